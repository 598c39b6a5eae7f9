"""Disk: what each layer of the data directory holds, and whether an update has room to run.

An update that runs out of disk fails without losing anything (every table commit and the snapshot
pointer are atomic), but it fails late, after minutes of work. It is cheaper to refuse to start,
naming the directory and how much space is missing, when the free space is clearly short.
"""

import os
import shutil
from collections.abc import Collection, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from conf.settings import DataPaths
from pipelines._engine.errors import PipelineError
from pipelines.snapshot import read_pointer, served_files
from pipelines.snapshot.documents import documents_of
from pipelines.snapshot.places import places_of

LAKEHOUSE_BYTES_PER_LANDING_BYTE = 4
"""What an update writes to the lakehouse (bronze, silver, gold, quarantine, events) per byte of
compressed landing it reads, rounded up from a full refresh of the benchmark's landing (RESULTS.md)."""
UNCOMPRESSED_LANDING_RATIO = 10
"""How much larger a page landed uncompressed (`.jsonl`, by earlier versions) is than compressed."""


@dataclass(frozen=True)
class Layer:
    name: str
    path: Path
    bytes: int
    files: int


def disk_by_layer(paths: DataPaths) -> list[Layer]:
    """The bytes and files of each layer of the data directory: landing, each lakehouse schema, the
    serving snapshots, state, and the engine's spill directory."""
    folders = [("landing", paths.landing)]
    if paths.lakehouse.is_dir():
        folders += [
            (f"lakehouse/{schema.name}", schema) for schema in sorted(paths.lakehouse.iterdir()) if schema.is_dir()
        ]
    folders += [("snapshots", paths.snapshots), ("state", paths.state), ("tmp", paths.root / "tmp")]
    return [Layer(name, path, *_usage(path)) for name, path in folders]


def _files(folder: Path) -> Iterator[tuple[str, os.stat_result]]:
    """(name, stat) of each file under `folder`; one removed while walking (by a vacuum, a publish) is skipped."""
    for directory, _, names in os.walk(folder):
        for name in names:
            with suppress(FileNotFoundError):
                yield name, os.stat(os.path.join(directory, name), follow_symlinks=False)


def _usage(folder: Path) -> tuple[int, int]:
    """(bytes, files) under `folder`, by the blocks files take on disk (a sparse file counts what it holds),
    each file once however many links it has (snapshots share documents files by hard link)."""
    stats = {(stat.st_dev, stat.st_ino): stat for _, stat in _files(folder)}
    return sum(stat.st_blocks * 512 for stat in stats.values()), len(stats)


def space_needed(
    paths: DataPaths, landing_tables: dict[str, str], *, full_refresh: Collection[str], reserve_bytes: int
) -> dict[str, int]:
    """An estimate of the disk an update may take, by what takes it:

    - `lakehouse`: the Delta files it writes, from the landing pages it has to read (`landing_tables`
      names each landing-fed table's entity folder: all its pages when it is refreshed whole, else
      those landed since it last committed), plus the tables `full_refresh` writes anew beside their
      old versions (kept until the vacuum);
    - `publishing`: a copy of each served snapshot file (a changed table is patched in a copy when a
      reader holds the file before it), and the documents too when anything is refreshed whole;
    - `reserve`: room kept free for DuckDB's spill files and everything else on the disk.
    """
    landing = 0
    for table, folder in landing_tables.items():
        since = None if table in full_refresh else _last_commit(paths.lakehouse / Path(*table.split(".", 1)))
        landing += sum(
            stat.st_size // (1 if name.endswith(".gz") else UNCOMPRESSED_LANDING_RATIO)
            for name, stat in _files(paths.landing / folder)
            if since is None or stat.st_mtime >= since
        )
    lakehouse = landing * LAKEHOUSE_BYTES_PER_LANDING_BYTE
    lakehouse += sum(_usage(paths.lakehouse / Path(*table.split(".", 1)))[0] for table in full_refresh)
    publishing = 0
    for database in served_files(paths.snapshots, read_pointer(paths.snapshot_pointer)).values():
        companions = [database, places_of(database)] + ([documents_of(database)] if full_refresh else [])
        publishing += sum(path.stat().st_size for path in companions if path.exists())
    return {"lakehouse": lakehouse, "publishing": publishing, "reserve": reserve_bytes}


def _last_commit(table: Path) -> float | None:
    """When a Delta table last committed (seconds since the epoch, its newest log entry); None before it exists."""
    commits = [stat.st_mtime for name, stat in _files(table / "_delta_log") if name.endswith(".json")]
    return max(commits, default=None)


def check_free_space(
    paths: DataPaths, landing_tables: dict[str, str], *, full_refresh: Collection[str], reserve_bytes: int
) -> None:
    """Raise PipelineError naming the data directory and the shortfall when its disk has less free space
    than `space_needed` estimates."""
    paths.root.mkdir(parents=True, exist_ok=True)
    needed = space_needed(paths, landing_tables, full_refresh=full_refresh, reserve_bytes=reserve_bytes)
    free, total = shutil.disk_usage(paths.root).free, sum(needed.values())
    if free < total:
        parts = ", ".join(f"{part} {human_bytes(size)}" for part, size in needed.items())
        raise PipelineError(
            f"not enough disk for an update in {paths.root}: {human_bytes(free)} free, about {human_bytes(total)} "
            f"needed ({parts}); free {human_bytes(total - free)} more (`mls2 pipeline storage` shows what each "
            "layer holds; MLS2_MIN_FREE_MB sets the reserve)"
        )


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(size) < 1024:
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} TB"
