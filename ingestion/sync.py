"""One sync: every selected entity from Qobrix into the landing zone, then the watermarks move.

- Incremental (CDC): `modified >= watermark - overlap`, so equal timestamps and clock skew
  lose nothing; trashed records become delete operations.
- Full refresh (`--full-refresh`, or an entity never synced): everything, and a record
  landed before but not seen now becomes a delete operation.
- Reconciliation (`--reconcile`, and every `reconcile_every` on its own): an incremental sync
  that also scans every live id (lean pages, nothing landed) and lands deletes for the known
  ids it did not meet: hard deletes, which leave no trace a `modified` scan can see, reach
  gold without a full refresh. When more vanish than `reconcile_max_deletes` of the known
  ids, the deletes are withheld (an answer that lost records must not empty the feed).
- Test mode (`--max-properties N`): N properties and only what they reference.
- Entities with no `modified` (portal lookups) are refreshed whole every time.

Each page lands as one file before the sync's state moves; the state (cursors, ids seen,
watermarks) is in SQLite, so a sync killed at any point resumes and loses nothing.
"""

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta

import orjson

from conf.entities import Entity
from ingestion.client import QobrixClient
from ingestion.errors import IngestionError, MalformedResponseError
from ingestion.landing import LandingWriter, new_sync_id
from ingestion.scan import Scanner, Window, newest, parse_time
from ingestion.state import SyncState

ProgressCallback = Callable[[str, int, int | None], None]
"""Called after each landed page with (entity, records landed so far, records expected or None)."""

FULL, INCREMENTAL, TEST = "full", "incremental", "test"
WITHHOLD_FLOOR = 10
"""So few vanished ids are landed as deletes whatever their share (a small brokerage's usual week)."""
SHORT_SCAN_SHARE = 0.01
"""An id scan meeting fewer records than Qobrix counted when it began, by more than this share (records
deleted while it pages are few), ended early: its vanished ids are not trusted."""


@dataclass(frozen=True)
class SyncOptions:
    full_refresh: bool = False
    max_properties: int | None = None
    max_in_flight: int = 4
    overlap: timedelta = timedelta(minutes=10)
    page_size: int = 100
    reconcile: bool = False
    reconcile_every: timedelta | None = timedelta(hours=24)
    """An incremental sync reconciles an entity last reconciled longer ago than this (None: on demand only)."""
    reconcile_max_deletes: float = 0.1
    """The share of an entity's known live ids a reconciliation may land as deletes."""


@dataclass
class EntityReport:
    entity: str
    mode: str
    pages: int = 0
    records: int = 0
    deletes: int = 0
    warnings: int = 0
    reconciled: bool = False
    """Whether this sync looked for the entity's vanished records (full refresh, whole, or reconciliation)."""
    withheld_deletes: int = 0
    """Vanished ids a reconciliation did not land as deletes: more than `reconcile_max_deletes` vanished."""


@dataclass
class SyncReport:
    sync_id: str
    mode: str
    status: str
    started: str
    finished: str = ""
    resumed: bool = False
    http_calls: int = 0
    entities: list[EntityReport] = field(default_factory=list)
    error: str | None = None

    @property
    def records(self) -> int:
        return sum(entity.records for entity in self.entities)

    def calls_per_1000_properties(self) -> float | None:
        properties = next((e.records for e in self.entities if e.entity == "properties"), 0)
        return round(self.http_calls * 1000 / properties, 1) if properties else None


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


class Sync:
    def __init__(
        self,
        *,
        client: QobrixClient,
        landing_root: str,
        state: SyncState,
        entities: list[Entity],
        options: SyncOptions = SyncOptions(),
        progress: ProgressCallback | None = None,
    ) -> None:
        self.client = client
        self.landing_root = landing_root
        self.state = state
        self.options = options
        self.entities = entities
        self.progress = progress or (lambda entity, landed, expected: None)
        self.mode = TEST if options.max_properties else (FULL if options.full_refresh else INCREMENTAL)
        self._stop = threading.Event()
        self._landed: dict[str, int] = {}
        self._modes: dict[str, str] = {}
        self._expected: dict[str, int | None] = {}
        self._lock = threading.Lock()

    # --- the sync as a whole ----------------------------------------------------------------
    def run(self) -> SyncReport:
        names = [entity.name for entity in self.entities]
        if self.mode == TEST and "properties" not in names:
            raise ValueError("--max-properties needs the properties entity")
        sync_id, started, resumed = self._begin(names)
        self.sync_id = sync_id
        self.writer = LandingWriter(self.landing_root, sync_id, started=started)
        report = SyncReport(
            sync_id=sync_id, mode=self.mode, status="running", started=started.isoformat(), resumed=resumed
        )
        calls_before = self.client.calls
        try:
            with ThreadPoolExecutor(self.options.max_in_flight, thread_name_prefix="qobrix") as self.pool:
                if self.mode == TEST:
                    self._run_test_mode()
                else:
                    self._run_all()
        except BaseException as error:
            self._stop.set()
            if isinstance(error, MalformedResponseError) and error.body and error.entity:
                self.writer.write_malformed(next(e for e in self.entities if e.name == error.entity), error.body)
            message = str(error) if isinstance(error, IngestionError) else f"{type(error).__name__}: {error}"
            self.state.fail_sync(sync_id, message)
            raise
        report.http_calls = self.client.calls - calls_before
        report.entities = [
            self._entity_report(entity) for entity in self.entities if self.state.entity_progress(sync_id, entity.name)
        ]
        report.status = "succeeded"
        report.finished = datetime.now(UTC).isoformat()
        manifest = {**asdict(report), "calls_per_1000_properties": report.calls_per_1000_properties()}
        self.writer.write_manifest(manifest)
        self.state.finish_sync(
            sync_id,
            orjson.dumps(manifest).decode(),
            advance_watermarks=self.mode != TEST,
            full_refresh=self.mode == FULL,
        )
        return report

    def _begin(self, names: list[str]) -> tuple[str, datetime, bool]:
        """Resume the unfinished sync when it asked for the same thing; otherwise start afresh."""
        unfinished = self.state.unfinished_sync()
        if unfinished is not None:
            same = (unfinished.mode, list(unfinished.entities), unfinished.max_properties) == (
                self.mode,
                names,
                self.options.max_properties,
            )
            if same:
                self.state.resume_sync(unfinished.sync_id)
                return unfinished.sync_id, datetime.fromisoformat(unfinished.started_at), True
            self.state.abandon_sync(unfinished.sync_id)
        started = datetime.now(UTC)
        sync_id = new_sync_id(started)
        self.state.begin_sync(sync_id, self.mode, names, self.options.max_properties)
        return sync_id, started, False

    def _entity_report(self, entity: Entity) -> EntityReport:
        progress = self.state.entity_progress(self.sync_id, entity.name)
        mode = self._modes.get(entity.name, self.mode)
        looked = self.state.reconcile_progress(self.sync_id, entity.name)
        return EntityReport(
            entity.name, mode, progress["pages"], progress["records"], progress["deletes"], progress["warnings"],
            reconciled=looked is not None and looked.outcome == "landed",
            withheld_deletes=looked.withheld_deletes if looked else 0,
        )  # fmt: skip

    def _run_all(self) -> None:
        """Every entity at once: each orchestrates its scans on the shared pool of requests in flight."""
        with ThreadPoolExecutor(len(self.entities), thread_name_prefix="entity") as orchestrators:
            futures = [orchestrators.submit(self._sync_entity, entity) for entity in self.entities]
            self._wait(futures)

    def _wait(self, futures: list[Future]) -> None:
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((future for future in done if future.exception() is not None), None)
        if failed is not None:
            self._stop.set()
            wait(futures)
            raise failed.exception()

    # --- one entity -------------------------------------------------------------------------
    def _sync_entity(self, entity: Entity) -> None:
        progress = self.state.entity_progress(self.sync_id, entity.name)
        if progress and progress["status"] == "done":
            return
        self.state.start_entity(self.sync_id, entity.name)
        if not entity.incremental:
            self._modes[entity.name] = "whole"
            self._in_pool(
                lambda: Scanner(self.client, entity, page_size=self.options.page_size).scan_whole(self._sink(entity))
            )
            self._land_vanished(entity)
        else:
            watermark = self.state.watermark(entity.name)
            full = self.mode == FULL or watermark.modified is None
            self._modes[entity.name] = FULL if full else INCREMENTAL
            lower = None if full else parse_time(watermark.modified) - self.options.overlap
            self._scan_live(entity, lower)
            if entity.media_time and not full:
                self._scan_media_changes(entity, lower)
            self._scan_trash(entity, None if full else lower)
            if not full and self._reconciles(entity):
                self._reconcile(entity)
            if full:
                self._in_pool(
                    lambda: Scanner(self.client, entity, page_size=self.options.page_size).scan_nulls(
                        self._sink(entity)
                    )
                )
                self._land_vanished(entity)
        if not self._stop.is_set():
            self.state.finish_entity(self.sync_id, entity.name)

    def _in_pool(self, work: Callable[[], None]) -> None:
        self._wait([self.pool.submit(work)])

    def _scan_live(self, entity: Entity, lower: datetime | None) -> None:
        """Windows in parallel, then a tail from the newest record seen, so changes made meanwhile land too."""
        scanner = Scanner(self.client, entity, page_size=self.options.page_size)
        planned = self.state.windows(self.sync_id, entity.name)
        if not planned:
            windows, count = scanner.plan(lower, self.options.max_in_flight * 2)
            self._expected[entity.name] = count
            self.state.plan_windows(self.sync_id, entity.name, [(iso(w.lower), iso(w.upper)) for w in windows])
            planned = self.state.windows(self.sync_id, entity.name)
        tail_number = len(planned)
        pending = [
            Window(number, parse_time(low), parse_time(high), parse_time(cursor))
            for number, low, high, cursor, done in planned
            if not done
        ]
        main = [window for window in pending if window.number < tail_number]
        self._wait([self.pool.submit(self._scan_window, scanner, window) for window in main])
        if self._stop.is_set():
            return
        progress = self.state.entity_progress(self.sync_id, entity.name)
        newest_seen = parse_time(progress["max_modified"]) if progress["max_modified"] else lower
        self.state.plan_windows(self.sync_id, entity.name, [(iso(newest_seen), None)], first=tail_number)
        _, low, _, cursor, done = next(w for w in self.state.windows(self.sync_id, entity.name) if w[0] == tail_number)
        if not done:
            self._in_pool(
                lambda: self._scan_window(scanner, Window(tail_number, parse_time(low), None, parse_time(cursor)))
            )

    def _scan_window(self, scanner: Scanner, window: Window) -> None:
        entity = scanner.entity
        sink = self._sink(entity, window=window.number)
        scanner.scan(window, sink, stop=self._stop.is_set)
        if not self._stop.is_set():
            self.state.move_cursor(self.sync_id, entity.name, window.number, None, done=True)

    def _scan_media_changes(self, entity: Entity, lower: datetime | None) -> None:
        """Records whose media changed since the watermark; Qobrix may not move `modified` for that."""
        scanner = Scanner(self.client, entity, page_size=self.options.page_size, field=entity.media_time)
        sink = self._sink(entity)
        self._in_pool(
            lambda: scanner.scan(
                Window(-2, lower, None), lambda records, cursor: sink(records, None), stop=self._stop.is_set
            )
        )

    def _scan_trash(self, entity: Entity, lower: datetime | None) -> None:
        """Trashed records (by the time they were trashed) land as delete operations."""
        scanner = Scanner(self.client, entity, page_size=self.options.page_size, field="trashed")
        sink = self._sink(entity, operation="delete")
        self._in_pool(
            lambda: scanner.scan(
                Window(-1, lower, None),
                lambda records, cursor: sink(records, None),
                trashed=True,
                stop=self._stop.is_set,
            )
        )

    def _reconciles(self, entity: Entity) -> bool:
        """Asked for, due, or begun by the sync this one resumes."""
        if self.options.reconcile or self.state.reconcile_progress(self.sync_id, entity.name) is not None:
            return True
        last = self.state.last_reconciled(entity.name)
        every = self.options.reconcile_every
        return every is not None and (last is None or datetime.now(UTC) - last >= every)

    def _reconcile(self, entity: Entity) -> None:
        """Every live id, in lean pages (media left out): the records with no `modified` by page number
        first (one given a `modified` meanwhile is then met by the keyset), then a keyset scan over
        `modified` (a record edited meanwhile moves ahead of the cursor, where the scan still meets it;
        offset paging would skip one and delete a live listing). Ids met that are not known as live
        are fetched whole and landed. Then the known live ids not met become deletes, unless too many
        vanished or the scan met clearly fewer records than Qobrix counted."""
        lean = Scanner(self.client, replace(entity, params={**entity.params, "media": "false"}),
                       page_size=self.options.page_size)  # fmt: skip
        progress = self.state.reconcile_progress(self.sync_id, entity.name)
        if progress is None:
            _, counted = lean.plan(None, 1)
            self.state.begin_reconcile(self.sync_id, entity.name, counted)
            progress = self.state.reconcile_progress(self.sync_id, entity.name)
        if progress.outcome is not None:
            return
        self._expected[f"{entity.name} (reconcile)"] = progress.ids_expected
        sink = self._id_sink(entity)
        if not progress.nulls_done:
            self._in_pool(lambda: lean.scan_nulls(sink, stop=self._stop.is_set))
            if self._stop.is_set():
                return
            self.state.finish_id_scan(self.sync_id, entity.name, "nulls")
        if not progress.keyset_done:
            window = Window(-3, None, None, parse_time(progress.cursor))
            self._in_pool(lambda: lean.scan(window, sink, stop=self._stop.is_set))
            if self._stop.is_set():
                return
            self.state.finish_id_scan(self.sync_id, entity.name, "keyset")
        progress = self.state.reconcile_progress(self.sync_id, entity.name)
        vanished, live = self.state.count_vanished(entity.name, self.sync_id)
        short = (progress.ids_expected or 0) - progress.ids_met
        too_many = vanished > max(WITHHOLD_FLOOR, self.options.reconcile_max_deletes * live)
        cut_short = short > max(WITHHOLD_FLOOR, SHORT_SCAN_SHARE * (progress.ids_expected or 0))
        if vanished and (too_many or cut_short):
            self.state.finish_reconcile(self.sync_id, entity.name, withheld_deletes=vanished)
            return
        self._land_vanished(entity, reason="absent from a reconciliation")

    def _id_sink(self, entity: Entity):
        """Mark a page's live ids seen by this sync (and move the keyset scan's cursor); land whole the
        records met that are not known as live."""
        label = f"{entity.name} (reconcile)"

        def see(records: list, cursor: datetime | None) -> None:
            ids = [r["id"] for r in records if isinstance(r, dict) and isinstance(r.get("id"), str)]
            missing = self.state.mark_seen(self.sync_id, entity.name, ids, cursor=iso(cursor))
            if missing:
                Scanner(self.client, entity, page_size=self.options.page_size).fetch_by(
                    "id", missing, self._sink(entity)
                )
            with self._lock:
                self._landed[label] = self._landed.get(label, 0) + len(records)
                checked = self._landed[label]
            self.progress(label, checked, self._expected.get(label))

        return see

    def _land_vanished(self, entity: Entity, reason: str = "absent from a full refresh") -> None:
        """After a full refresh or a reconciliation: records landed before and not seen now were
        deleted in Qobrix."""
        if self._stop.is_set():
            return
        progress = self.state.entity_progress(self.sync_id, entity.name)
        seen = parse_time(progress["max_modified"]) if progress["max_modified"] else None
        noticed = max(filter(None, [datetime.now(UTC).replace(microsecond=0), seen and seen + timedelta(seconds=1)]))
        for ids in self.state.vanished(entity.name, self.sync_id):
            records = [
                {"id": record_id, "modified": noticed.isoformat(), "deleted_reason": reason} for record_id in ids
            ]
            self.writer.write_page(entity, records, operation="delete")
            self.state.record_page(self.sync_id, entity.name, ids=ids, live=False, deletes=len(ids))
        self.state.finish_reconcile(self.sync_id, entity.name)

    # --- landing one page -------------------------------------------------------------------
    def _sink(
        self, entity: Entity, *, operation: str = "upsert", window: int | None = None, collect: Callable | None = None
    ):
        """Land one page; only the `modified` keyset scans (windows and tail) may move the watermark.

        Other scans (trash, media changes) can meet records changed after the keyset passed;
        letting them raise the watermark would skip edits the keyset has not met yet.
        """
        moves_watermark = window is not None

        def land(records: list, cursor: datetime | None) -> None:
            if not records:
                if window is not None and cursor is not None:
                    self.state.move_cursor(self.sync_id, entity.name, window, iso(cursor))
                return
            self.writer.write_page(entity, records, operation=operation)
            objects = [r for r in records if isinstance(r, dict)]
            ids = [r["id"] for r in objects if isinstance(r.get("id"), str)]
            unreadable = sum(
                1 for r in objects if r.get("modified") is not None and parse_time(r.get("modified")) is None
            )
            self.state.record_page(
                self.sync_id, entity.name, ids=ids, live=operation == "upsert",
                records=len(records) if operation == "upsert" else 0,
                deletes=len(records) if operation == "delete" else 0,
                warnings=len(records) - len(ids) + unreadable,
                max_modified=iso(newest(objects, "modified")) if moves_watermark else None,
                max_created=iso(newest(objects, "created")) if moves_watermark else None,
                window=window, cursor=iso(cursor),
            )  # fmt: skip
            if collect:
                collect(objects)
            with self._lock:
                self._landed[entity.name] = self._landed.get(entity.name, 0) + len(records)
                landed = self._landed[entity.name]
            self.progress(entity.name, landed, self._expected.get(entity.name))

        return land

    # --- test mode --------------------------------------------------------------------------
    def _run_test_mode(self) -> None:
        """N properties, then only the records they need (references, viewings and their meetings, lookups)."""
        by_name = {entity.name: entity for entity in self.entities}
        wanted: dict[str, set[str]] = {name: set() for name in by_name}
        fetched: dict[str, set[str]] = {name: set() for name in by_name}
        lock = threading.Lock()

        def collect(entity: Entity):
            def remember(records: list[dict]) -> None:
                with lock:
                    fetched[entity.name].update(r["id"] for r in records if isinstance(r.get("id"), str))
                    for field_name, target in entity.references.items():
                        if target in wanted:
                            wanted[target].update(r[field_name] for r in records if isinstance(r.get(field_name), str))

            return remember

        properties = by_name["properties"]
        limit = self.options.max_properties
        landed = 0

        def first_properties(records: list, cursor: datetime | None) -> None:
            nonlocal landed
            records = records[: max(0, limit - landed)]
            landed += len(records)
            self._sink(properties, collect=collect(properties))(records, None)

        self.state.start_entity(self.sync_id, "properties")
        scanner = Scanner(self.client, properties, page_size=self.options.page_size)
        self._in_pool(
            lambda: scanner.scan(
                Window(0, None, None), first_properties, stop=lambda: landed >= limit or self._stop.is_set()
            )
        )
        self.state.finish_entity(self.sync_id, "properties")
        lookups = [entity for entity in self.entities if entity.lookup]
        for entity in lookups:
            self.state.start_entity(self.sync_id, entity.name)
        self._wait([self.pool.submit(self._fetch_whole, entity, collect(entity)) for entity in lookups])
        children_fetched: set[str] = set()
        while True:
            jobs = []
            for entity in self.entities:
                if entity.lookup or entity.name == "properties":
                    continue
                with lock:
                    missing = sorted(wanted[entity.name] - fetched[entity.name])
                    fetched[entity.name].update(missing)
                if missing:
                    jobs.append((entity, "id", missing))
                if entity.parent and entity.name not in children_fetched and entity.parent.entity in fetched:
                    children_fetched.add(entity.name)
                    jobs.append((entity, entity.parent.field, sorted(fetched[entity.parent.entity])))
            jobs = [job for job in jobs if job[2]]
            if not jobs:
                break
            for entity, _, _ in jobs:
                self.state.start_entity(self.sync_id, entity.name)
            self._wait(
                [
                    self.pool.submit(self._fetch_by, entity, name, values, collect(entity))
                    for entity, name, values in jobs
                ]
            )
        for entity in self.entities:
            if self.state.entity_progress(self.sync_id, entity.name):
                self.state.finish_entity(self.sync_id, entity.name)

    def _fetch_whole(self, entity: Entity, collect) -> None:
        Scanner(self.client, entity, page_size=self.options.page_size).scan_whole(self._sink(entity, collect=collect))

    def _fetch_by(self, entity: Entity, field_name: str, values: list[str], collect) -> None:
        Scanner(self.client, entity, page_size=self.options.page_size).fetch_by(
            field_name, values, self._sink(entity, collect=collect)
        )
