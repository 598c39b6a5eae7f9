"""The pointer to the served snapshot: `CURRENT.json`, naming each table's file, replaced atomically.

New files are complete on disk before the pointer moves, so readers never see half an update; the
pointer also keeps what the publish that wrote it compared and did (read by the next publish and by
`mls2 pipeline status`).
"""

from datetime import UTC, datetime
from pathlib import Path

import orjson

from conf.files import write_atomically

LAYOUT = 2
"""The layout of the snapshot files this code writes and reads: 2, documents compressed in blocks that
each file's `__document_blocks` lists (1: documents stored as they are). A pointer written before it
named a layout (read as 1) may name files of either, which readers of layout 2 tell apart by the
blocks table. Readers serve files of their layout or an earlier one, and a publish patches none newer."""


class SnapshotLayoutError(RuntimeError):
    """The pointer names files of a layout newer than this code reads (an API older than the pipeline,
    or a pipeline downgraded)."""


def check_layout(pointer: dict) -> None:
    """Refuse a pointer whose files need a newer reader, naming both layouts."""
    layout = pointer.get("layout", 1)
    if not isinstance(layout, int) or layout > LAYOUT:
        raise SnapshotLayoutError(
            f"the published snapshot is of layout {layout!r}, and this version reads layouts up to {LAYOUT}: "
            "upgrade to the version that published it (the API and the pipeline alike)"
        )


def read_pointer(pointer: Path) -> dict | None:
    return orjson.loads(pointer.read_bytes()) if pointer.exists() else None


def write_pointer(
    pointer_path: Path,
    files: dict[str, str],
    update_id: str,
    versions: dict[str, int],
    fingerprints: dict[str, str] | None = None,
    tables: dict[str, str] | None = None,
    previous_files: dict[str, str] | None = None,
    started_at: datetime | None = None,
    verified: dict[str, int] | None = None,
) -> dict:
    """Point readers at the snapshot `files` (table -> file, relative to the pointer's folder),
    atomically. `fingerprints` are the gold tables' (what the next publish compares), `tables` what
    this publish did to each, `previous_files` what the pointer named before (readers may hold them),
    `started_at` when the publish began (its length is how long building the files took),
    `verified` the gold version each kept served file's rows were found equal to (later than the one
    the file records: a kept file is not written)."""
    published_at = datetime.now(UTC)
    pointer = {
        "layout": LAYOUT,
        "update_id": update_id,
        "started_at": (started_at or published_at).isoformat(),
        "published_at": published_at.isoformat(),
        "files": files,
        "previous_files": previous_files or {},
        "versions": versions,
        "fingerprints": fingerprints or {},
        "tables": tables or {},
        "verified_versions": verified or {},
    }
    write_atomically(pointer_path, orjson.dumps(pointer, option=orjson.OPT_INDENT_2))
    return pointer


def publishing_seconds(pointer: dict) -> float:
    """How long the publish that wrote `pointer` took (0 for a pointer written before it was recorded)."""
    started = pointer.get("started_at", pointer["published_at"])
    return (datetime.fromisoformat(pointer["published_at"]) - datetime.fromisoformat(started)).total_seconds()


def served_files(snapshots: Path, pointer: dict | None) -> dict[str, Path]:
    """The file of each table `pointer` serves (none when nothing is published). A pointer written
    before snapshots were kept per table names none, so the next update publishes anew."""
    return {name: snapshots / file for name, file in (pointer or {}).get("files", {}).items()}
