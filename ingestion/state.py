"""Sync state (the 2025 version's `cdc_metadata`), durable in SQLite.

- `watermarks`: per entity, the newest `modified` and `created` landed by a finished sync;
  they move only when a whole sync has landed its data.
- `syncs` / `sync_entities` / `windows`: the sync in progress and its cursors, so a sync
  killed at any point (even `kill -9`) resumes where it stopped.
- `known_ids`: every record id landed as live, so a full refresh or a reconciliation (a scan of ids
  only) can tell which records vanished (hard deletes) without holding a million ids in memory.
- `reconciliations`: when each entity's vanished records were last looked for, and
  `reconcile_progress` how far the sync in progress has looked (so a resumed sync goes on).
"""

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS watermarks (
    entity TEXT PRIMARY KEY,
    modified TEXT,
    created TEXT,
    last_sync_id TEXT,
    last_full_refresh TEXT,
    updated_at TEXT
);
CREATE TABLE IF NOT EXISTS syncs (
    sync_id TEXT PRIMARY KEY,
    mode TEXT NOT NULL,
    entities TEXT NOT NULL,
    max_properties INTEGER,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    error TEXT,
    summary TEXT
);
CREATE TABLE IF NOT EXISTS sync_entities (
    sync_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    status TEXT NOT NULL,
    pages INTEGER NOT NULL DEFAULT 0,
    records INTEGER NOT NULL DEFAULT 0,
    deletes INTEGER NOT NULL DEFAULT 0,
    warnings INTEGER NOT NULL DEFAULT 0,
    max_modified TEXT,
    max_created TEXT,
    PRIMARY KEY (sync_id, entity)
);
CREATE TABLE IF NOT EXISTS windows (
    sync_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    window INTEGER NOT NULL,
    lower TEXT,
    upper TEXT,
    cursor TEXT,
    done INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sync_id, entity, window)
);
CREATE TABLE IF NOT EXISTS known_ids (
    entity TEXT NOT NULL,
    id TEXT NOT NULL,
    live INTEGER NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (entity, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reconciliations (
    entity TEXT PRIMARY KEY,
    sync_id TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    withheld_deletes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS reconcile_progress (
    sync_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    ids_expected INTEGER,
    ids_met INTEGER NOT NULL DEFAULT 0,
    nulls_done INTEGER NOT NULL DEFAULT 0,
    cursor TEXT,
    keyset_done INTEGER NOT NULL DEFAULT 0,
    outcome TEXT,
    withheld_deletes INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sync_id, entity)
);
"""


@dataclass(frozen=True)
class Watermark:
    entity: str
    modified: str | None = None
    created: str | None = None
    last_sync_id: str | None = None
    last_full_refresh: str | None = None


@dataclass(frozen=True)
class ReconcileProgress:
    ids_expected: int | None
    """How many live records Qobrix said it held when the id scan began."""
    ids_met: int
    nulls_done: bool
    """The records without `modified` were scanned (by page number)."""
    cursor: str | None
    """Where the keyset scan over `modified` resumes."""
    keyset_done: bool
    outcome: str | None
    """`landed` (the vanished ids landed as deletes) or `withheld` (too many vanished); None until then."""
    withheld_deletes: int


@dataclass(frozen=True)
class Reconciliation:
    entity: str
    sync_id: str
    finished_at: str
    withheld_deletes: int


@dataclass(frozen=True)
class SyncRecord:
    sync_id: str
    mode: str
    entities: tuple[str, ...]
    max_properties: int | None
    status: str
    started_at: str
    finished_at: str | None = None
    error: str | None = None
    summary: str | None = None


def now() -> str:
    return datetime.now(UTC).isoformat()


class SyncState:
    """One SQLite database; safe to use from the sync's worker threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL with synchronous=NORMAL survives any process crash (kill -9 included); after a power
        # loss the last commits may be missing, never half-applied: a resume then re-lands pages.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _rows(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, parameters).fetchall()

    # --- watermarks -------------------------------------------------------------------------
    def watermark(self, entity: str) -> Watermark:
        rows = self._rows(
            "SELECT entity, modified, created, last_sync_id, last_full_refresh FROM watermarks WHERE entity = ?",
            (entity,),
        )
        return Watermark(*rows[0]) if rows else Watermark(entity)

    def watermarks(self) -> list[Watermark]:
        rows = self._rows(
            "SELECT entity, modified, created, last_sync_id, last_full_refresh FROM watermarks ORDER BY entity"
        )
        return [Watermark(*row) for row in rows]

    # --- syncs ------------------------------------------------------------------------------
    def unfinished_sync(self) -> SyncRecord | None:
        rows = self._rows("SELECT * FROM syncs WHERE status IN ('running', 'failed') ORDER BY started_at DESC LIMIT 1")
        return self._sync(rows[0]) if rows else None

    def recent_syncs(self, limit: int = 10) -> list[SyncRecord]:
        return [self._sync(row) for row in self._rows("SELECT * FROM syncs ORDER BY started_at DESC LIMIT ?", (limit,))]

    @staticmethod
    def _sync(row: tuple) -> SyncRecord:
        sync_id, mode, entities, max_properties, status, started, finished, error, summary = row
        return SyncRecord(
            sync_id, mode, tuple(entities.split(",")), max_properties, status, started, finished, error, summary
        )

    def begin_sync(self, sync_id: str, mode: str, entities: list[str], max_properties: int | None) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO syncs (sync_id, mode, entities, max_properties, status, started_at) "
                "VALUES (?, ?, ?, ?, 'running', ?)",
                (sync_id, mode, ",".join(entities), max_properties, now()),
            )

    def resume_sync(self, sync_id: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE syncs SET status = 'running', error = NULL WHERE sync_id = ?", (sync_id,))

    def fail_sync(self, sync_id: str, error: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE syncs SET status = 'failed', error = ?, finished_at = ? WHERE sync_id = ?",
                (error, now(), sync_id),
            )

    def abandon_sync(self, sync_id: str) -> None:
        """A newer, different sync replaces an unfinished one: its data stays landed, its cursors go."""
        with self.transaction() as db:
            db.execute("UPDATE syncs SET status = 'abandoned', finished_at = ? WHERE sync_id = ?", (now(), sync_id))

    def finish_sync(self, sync_id: str, summary: str, *, advance_watermarks: bool, full_refresh: bool) -> None:
        """Mark the sync succeeded and, in the same transaction, move its entities' watermarks and
        record the entities whose vanished records it looked for."""
        with self.transaction() as db:
            db.execute(
                """
                INSERT INTO reconciliations (entity, sync_id, finished_at, withheld_deletes)
                SELECT entity, sync_id, ?, withheld_deletes FROM reconcile_progress
                WHERE sync_id = ? AND outcome IS NOT NULL
                ON CONFLICT (entity) DO UPDATE SET sync_id = excluded.sync_id, finished_at = excluded.finished_at,
                  withheld_deletes = excluded.withheld_deletes
                """,
                (now(), sync_id),
            )
            db.execute("DELETE FROM reconcile_progress WHERE sync_id = ?", (sync_id,))
            if advance_watermarks:
                for entity, max_modified, max_created in db.execute(
                    "SELECT entity, max_modified, max_created FROM sync_entities WHERE sync_id = ?", (sync_id,)
                ).fetchall():
                    db.execute(
                        """
                        INSERT INTO watermarks (entity, modified, created, last_sync_id, last_full_refresh, updated_at)
                        VALUES (?, ?, ?, ?, ?, ?)
                        ON CONFLICT (entity) DO UPDATE SET
                          modified = CASE WHEN excluded.modified > coalesce(watermarks.modified, '')
                                          THEN excluded.modified ELSE watermarks.modified END,
                          created = CASE WHEN excluded.created > coalesce(watermarks.created, '')
                                         THEN excluded.created ELSE watermarks.created END,
                          last_sync_id = excluded.last_sync_id,
                          last_full_refresh = coalesce(excluded.last_full_refresh, watermarks.last_full_refresh),
                          updated_at = excluded.updated_at
                        """,
                        (entity, max_modified, max_created, sync_id, sync_id if full_refresh else None, now()),
                    )
            db.execute(
                "UPDATE syncs SET status = 'succeeded', finished_at = ?, summary = ?, error = NULL WHERE sync_id = ?",
                (now(), summary, sync_id),
            )
            db.execute("DELETE FROM windows WHERE sync_id = ?", (sync_id,))

    # --- entity progress --------------------------------------------------------------------
    def entity_progress(self, sync_id: str, entity: str) -> dict | None:
        rows = self._rows(
            "SELECT status, pages, records, deletes, warnings, max_modified, max_created "
            "FROM sync_entities WHERE sync_id = ? AND entity = ?",
            (sync_id, entity),
        )
        if not rows:
            return None
        status, pages, records, deletes, warnings, max_modified, max_created = rows[0]
        return {"status": status, "pages": pages, "records": records, "deletes": deletes, "warnings": warnings,
                "max_modified": max_modified, "max_created": max_created}  # fmt: skip

    def start_entity(self, sync_id: str, entity: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO sync_entities (sync_id, entity, status) VALUES (?, ?, 'running')",
                (sync_id, entity),
            )

    def record_page(
        self, sync_id: str, entity: str, *, ids: list[str], live: bool, pages: int = 1, records: int = 0,
        deletes: int = 0, warnings: int = 0, max_modified: str | None = None, max_created: str | None = None,
        window: int | None = None, cursor: str | None = None,
    ) -> None:  # fmt: skip
        """Everything one landed page changes, in one transaction: ids seen, counters, the window's cursor."""
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO known_ids (entity, id, live, last_seen) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (entity, id) DO UPDATE SET live = excluded.live, last_seen = excluded.last_seen",
                [(entity, record_id, int(live), sync_id) for record_id in ids],
            )
            db.execute(
                """
                UPDATE sync_entities SET
                  pages = pages + ?, records = records + ?, deletes = deletes + ?, warnings = warnings + ?,
                  max_modified = CASE WHEN ? > coalesce(max_modified, '') THEN ? ELSE max_modified END,
                  max_created = CASE WHEN ? > coalesce(max_created, '') THEN ? ELSE max_created END
                WHERE sync_id = ? AND entity = ?
                """,
                (pages, records, deletes, warnings, max_modified, max_modified, max_created, max_created,
                 sync_id, entity),
            )  # fmt: skip
            if window is not None and cursor is not None:
                db.execute(
                    "UPDATE windows SET cursor = ? WHERE sync_id = ? AND entity = ? AND window = ?",
                    (cursor, sync_id, entity, window),
                )

    def finish_entity(self, sync_id: str, entity: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE sync_entities SET status = 'done' WHERE sync_id = ? AND entity = ?", (sync_id, entity))

    # --- windows (keyset cursors) -----------------------------------------------------------
    def windows(self, sync_id: str, entity: str) -> list[tuple[int, str | None, str | None, str | None, bool]]:
        rows = self._rows(
            "SELECT window, lower, upper, cursor, done FROM windows WHERE sync_id = ? AND entity = ? ORDER BY window",
            (sync_id, entity),
        )
        return [(window, lower, upper, cursor, bool(done)) for window, lower, upper, cursor, done in rows]

    def plan_windows(
        self, sync_id: str, entity: str, bounds: list[tuple[str | None, str | None]], *, first: int = 0
    ) -> None:
        """Record windows numbered from `first`, each starting at its lower bound; existing ones stay."""
        with self.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO windows (sync_id, entity, window, lower, upper, cursor) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (sync_id, entity, first + number, lower, upper, lower)
                    for number, (lower, upper) in enumerate(bounds)
                ],
            )

    def move_cursor(self, sync_id: str, entity: str, window: int, cursor: str | None, *, done: bool = False) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE windows SET cursor = ?, done = ? WHERE sync_id = ? AND entity = ? AND window = ?",
                (cursor, int(done), sync_id, entity, window),
            )

    # --- known ids ----------------------------------------------------------------------------
    def last_reconciled(self, entity: str) -> datetime | None:
        """When a finished sync last looked for `entity`'s vanished records (a full refresh or a reconciliation)."""
        rows = self._rows("SELECT finished_at FROM reconciliations WHERE entity = ?", (entity,))
        return datetime.fromisoformat(rows[0][0]) if rows else None

    def reconciliations(self) -> list[Reconciliation]:
        rows = self._rows("SELECT entity, sync_id, finished_at, withheld_deletes FROM reconciliations ORDER BY entity")
        return [Reconciliation(*row) for row in rows]

    def reconcile_progress(self, sync_id: str, entity: str) -> ReconcileProgress | None:
        rows = self._rows(
            "SELECT ids_expected, ids_met, nulls_done = 1, cursor, keyset_done = 1, outcome, withheld_deletes "
            "FROM reconcile_progress WHERE sync_id = ? AND entity = ?",
            (sync_id, entity),
        )
        return ReconcileProgress(*rows[0]) if rows else None

    def begin_reconcile(self, sync_id: str, entity: str, ids_expected: int | None) -> None:
        """Start looking for `entity`'s vanished records (a resumed sync keeps what it had found)."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO reconcile_progress (sync_id, entity, ids_expected) VALUES (?, ?, ?)",
                (sync_id, entity, ids_expected),
            )

    def mark_seen(self, sync_id: str, entity: str, ids: list[str], *, cursor: str | None = None) -> list[str]:
        """A page of a reconciliation's id scan, in one transaction: the known live ids it met are seen by
        this sync, the ids met are counted, and the keyset scan's cursor moves (when the page gives one).
        Returns the ids met that are not known as live (deleted by mistake, or never landed), for the
        sync to fetch whole."""
        with self.transaction() as db:
            db.executemany(
                "UPDATE known_ids SET last_seen = ? WHERE entity = ? AND id = ? AND live = 1",
                [(sync_id, entity, record_id) for record_id in ids],
            )
            seen = ids and {
                row[0]
                for row in db.execute(
                    f"SELECT id FROM known_ids WHERE entity = ? AND last_seen = ? AND live = 1 AND id IN "
                    f"({', '.join('?' * len(ids))})",
                    (entity, sync_id, *ids),
                )
            }
            db.execute(
                "UPDATE reconcile_progress SET ids_met = ids_met + ?, cursor = coalesce(?, cursor) "
                "WHERE sync_id = ? AND entity = ?",
                (len(ids), cursor, sync_id, entity),
            )
            db.execute("UPDATE sync_entities SET pages = pages + 1 WHERE sync_id = ? AND entity = ?", (sync_id, entity))
        return [record_id for record_id in ids if record_id not in seen]

    def finish_id_scan(self, sync_id: str, entity: str, part: str) -> None:
        """One part of a reconciliation's id scan is done: `nulls` (records without `modified`) or `keyset`."""
        column = {"nulls": "nulls_done", "keyset": "keyset_done"}[part]
        with self.transaction() as db:
            db.execute(
                f"UPDATE reconcile_progress SET {column} = 1 WHERE sync_id = ? AND entity = ?", (sync_id, entity)
            )

    def finish_reconcile(self, sync_id: str, entity: str, *, withheld_deletes: int = 0) -> None:
        """Record how looking for `entity`'s vanished records ended: deletes landed, or withheld."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO reconcile_progress (sync_id, entity, outcome, withheld_deletes) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (sync_id, entity) DO UPDATE SET outcome = excluded.outcome, "
                "withheld_deletes = excluded.withheld_deletes",
                (sync_id, entity, "withheld" if withheld_deletes else "landed", withheld_deletes),
            )

    def count_vanished(self, entity: str, sync_id: str) -> tuple[int, int]:
        """How many ids known as live this sync has not seen, of how many known as live."""
        [(vanished, live)] = self._rows(
            "SELECT count(*) FILTER (WHERE last_seen <> ?), count(*) FROM known_ids WHERE entity = ? AND live = 1",
            (sync_id, entity),
        )
        return vanished, live

    def vanished(self, entity: str, sync_id: str, batch: int = 1000) -> Iterator[list[str]]:
        """Ids known as live that this sync never saw, in batches (memory stays flat)."""
        last = ""
        while True:
            rows = self._rows(
                "SELECT id FROM known_ids WHERE entity = ? AND live = 1 AND last_seen <> ? AND id > ? "
                "ORDER BY id LIMIT ?",
                (entity, sync_id, last, batch),
            )
            if not rows:
                return
            yield [row[0] for row in rows]
            last = rows[-1][0]
