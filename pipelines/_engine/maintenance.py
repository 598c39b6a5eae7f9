"""Maintenance between updates, under the pipeline lock: VACUUM on a schedule, landing pages retired
once bronze holds them, and OPTIMIZE (compaction of the tables written merge-on-read) when asked."""

import time
import uuid
from pathlib import Path

import duckdb
import orjson

from conf.files import write_atomically
from conf.settings import DataPaths
from pipelines._engine.lakehouse import Lakehouse, register_delta
from pipelines._engine.landing_reader import landing_files
from pipelines._engine.lock import UpdateLock

MANIFESTS = "_manifests"
"""Where a sync lands its manifest, once it has landed every page (the landing layout's)."""
VACUUM_INTERVAL_SECONDS = 24 * 3600
"""How often updates are followed by a vacuum: a pass over every table opens each one and lists what
it could remove, which takes noticeable time even with nothing to remove."""


def vacuum_lakehouse(paths: DataPaths, retention_hours: int) -> dict[str, int]:
    """VACUUM every lakehouse table under the pipeline lock (no update may write meanwhile), and note
    when; returns the data files removed per table."""
    with UpdateLock(paths, f"vacuum {uuid.uuid4()}"):
        removed = Lakehouse(paths.lakehouse).vacuum(retention_hours)
    _last_vacuum(paths).touch()
    return removed


def retire_landing(paths: DataPaths, landing_tables: dict[str, str], older_than_days: float) -> dict[str, int]:
    """Delete the landing pages of finished syncs last modified more than `older_than_days` ago whose
    lines their bronze table holds (its `source_file`), as Auto Loader's `cloudFiles.cleanSource` deletes
    processed files; `landing_tables` names each landing-fed table's entity folder. Returns the pages
    removed per folder.

    Bronze is then the only record of those lines, so the entities are noted (`retired_landing`): a full
    refresh keeps their bronze tables and reads only pages they do not hold yet."""
    cutoff = time.time() - older_than_days * 86400
    # Only pages of syncs that finished (their manifest landed): a sync resumed later numbers its pages
    # on from those still on disk, and would reuse the name of a page retired.
    finished = {manifest.stem for manifest in (paths.landing / MANIFESTS).glob("*.json")}
    removed: dict[str, int] = {}
    with UpdateLock(paths, f"retire landing {uuid.uuid4()}"):
        lakehouse, con = Lakehouse(paths.lakehouse), duckdb.connect()
        try:
            for name, entity in landing_tables.items():
                table = lakehouse.table(name)
                if table is None:
                    continue
                register_delta(con, "bronze", table)
                held = {row[0] for row in con.execute("SELECT DISTINCT source_file FROM bronze").fetchall()}
                held_pages = [page for page in landing_files(paths.landing, entity) if page in held]
                pages = [
                    paths.landing / page
                    for page in held_pages
                    if Path(page).parent.name in finished and (paths.landing / page).stat().st_mtime < cutoff
                ]
                if pages:
                    _note_retired(paths, entity)
                for page in pages:
                    page.unlink()
                removed[entity] = len(pages)
        finally:
            con.close()
    _last_vacuum(paths).touch()
    return removed


def retired_landing(paths: DataPaths) -> set[str]:
    """The entity folders some of whose landing pages `retire_landing` deleted."""
    marker = _retired_marker(paths)
    return set(orjson.loads(marker.read_bytes())) if marker.exists() else set()


def _note_retired(paths: DataPaths, entity: str) -> None:
    """Note, before its first page goes, that an entity's landing is retired (a crash after the note
    and before the deletions only keeps bronze over a full refresh; the other order could lose lines)."""
    retired = retired_landing(paths)
    if entity not in retired:
        write_atomically(_retired_marker(paths), orjson.dumps(sorted(retired | {entity})))


def _retired_marker(paths: DataPaths) -> Path:
    return paths.state / "retired_landing.json"


def optimize_lakehouse(paths: DataPaths) -> dict[str, int]:
    """Rewrite, in every table that holds deletion vectors, the files with deleted rows and its small
    files (when it has more than one) as files of their live rows; returns the files rewritten per
    table. Tables without deletion vectors are appended to only, and read as streams: left alone."""
    rewritten = {}
    with UpdateLock(paths, f"optimize {uuid.uuid4()}"):
        lakehouse, con = Lakehouse(paths.lakehouse), duckdb.connect()
        try:
            for name in filter(lakehouse.holds_deletion_vectors, lakehouse.names()):
                rewritten[name] = lakehouse.compact(con, name, deleted_fraction=0.0, small_files=1)
        finally:
            con.close()
    return rewritten


def vacuum_due(paths: DataPaths) -> bool:
    """Whether VACUUM_INTERVAL_SECONDS have passed since the last vacuum (or there was none)."""
    marker = _last_vacuum(paths)
    return not marker.exists() or time.time() - marker.stat().st_mtime >= VACUUM_INTERVAL_SECONDS


def _last_vacuum(paths: DataPaths) -> Path:
    return paths.state / "last_vacuum"
