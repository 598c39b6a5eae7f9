"""Publishing gold for serving: a DuckDB file built from the gold Delta tables, swapped in atomically.

The API reads `CURRENT.json` to find the snapshot; a new snapshot is complete on disk
before the pointer moves, so readers never see half an update.
"""

import os
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson

from conf.files import write_atomically
from pipelines._engine.lakehouse import Lakehouse

KEPT_SNAPSHOTS = 2


def read_pointer(pointer: Path) -> dict | None:
    return orjson.loads(pointer.read_bytes()) if pointer.exists() else None


def publish_snapshot(lakehouse: Lakehouse, pointer_path: Path, tables: dict[str, str], update_id: str) -> dict:
    """Build `gold-<update>.duckdb` from the served gold tables (name -> key), then point the pointer at it."""
    snapshots = pointer_path.parent
    snapshots.mkdir(parents=True, exist_ok=True)
    file_name = f"gold-{update_id}.duckdb"
    building = snapshots / f".{file_name}.building"
    building.unlink(missing_ok=True)
    versions = {}
    with duckdb.connect(str(building)) as con:
        for qualified, key in tables.items():
            table = lakehouse.table(qualified)
            if table is None:
                continue
            versions[qualified] = table.version()
            name = qualified.split(".", 1)[1]
            con.register("gold_source", table.to_pyarrow_dataset())
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM gold_source')
            con.unregister("gold_source")
            con.execute(f'CREATE UNIQUE INDEX "{name}_key" ON "{name}" ("{key}")')
        con.execute("CHECKPOINT")
    os.replace(building, snapshots / file_name)
    pointer = {
        "file": file_name,
        "update_id": update_id,
        "published_at": datetime.now(UTC).isoformat(),
        "versions": versions,
    }
    write_atomically(pointer_path, orjson.dumps(pointer, option=orjson.OPT_INDENT_2))
    _remove_old_snapshots(snapshots, keep=file_name)
    return pointer


def _remove_old_snapshots(snapshots: Path, *, keep: str) -> None:
    """Keep the new snapshot and the one before it (readers may still hold it open)."""
    older = sorted((p for p in snapshots.glob("gold-*.duckdb") if p.name != keep), key=lambda p: p.stat().st_mtime)
    for path in older[: max(0, len(older) - (KEPT_SNAPSHOTS - 1))]:
        path.unlink(missing_ok=True)
