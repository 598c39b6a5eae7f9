"""Disk: what each layer of the data directory holds, and whether an update has room to run.

An update that runs out of disk fails without losing anything (every table commit and the snapshot
pointer are atomic), but it fails late, after minutes of work. It is cheaper to refuse to start,
naming the directory and how much space is missing, when the free space is clearly short.
"""

import fcntl
import os
import shutil
import struct
from collections import defaultdict
from collections.abc import Collection, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG

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


def _usage(folder: Path) -> tuple[int, int]:
    """(bytes, files) under `folder`, by the blocks files take on disk (a sparse file counts what it holds),
    each file once however many links it has (snapshots share documents files by hard link), and
    each block shared by several files once (a snapshot file cloned for a publish shares the blocks
    its patch did not write with the file it was cloned from)."""
    held, shared, seen = 0, defaultdict(list), set()
    for path, stat in _files(folder):
        measured = _file_usage(path, stat)
        if measured is None or measured[0] in seen:
            continue
        (device, inode), blocks, ranges = measured
        seen.add((device, inode))
        held += max(0, blocks - sum(end - start for start, end in ranges))
        shared[device] += ranges
    return held + sum(map(_union_length, shared.values())), len(seen)


def _file_usage(path: Path, stat: os.stat_result) -> tuple[tuple[int, int], int, list[tuple[int, int]]] | None:
    """A file's device and inode, the bytes of its blocks and the ranges of them other files share,
    from its `stat` (not following a symlink) and the file itself once opened; a symlink or any other
    file that is not a regular one by its own blocks; None once removed."""
    if not S_ISREG(stat.st_mode):
        return (stat.st_dev, stat.st_ino), stat.st_blocks * 512, []
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError:  # unreadable, or replaced by a symlink meanwhile: its blocks without sharing
        return (stat.st_dev, stat.st_ino), stat.st_blocks * 512, []
    try:
        stat = os.fstat(descriptor)  # the file opened, whatever took its name since the walk
        return (stat.st_dev, stat.st_ino), stat.st_blocks * 512, _shared_ranges(descriptor)
    finally:
        os.close(descriptor)


def _files(folder: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """(path, stat) of each file under `folder`; one removed while walking (by a vacuum, a publish) is skipped."""
    for directory, _, names in os.walk(folder):
        for name in names:
            path = Path(directory, name)
            with suppress(FileNotFoundError):
                yield path, path.stat(follow_symlinks=False)


FS_IOC_FIEMAP = 0xC020660B
"""Linux's ioctl listing where a file's extents lie on the device (linux/fiemap.h)."""
FIEMAP_HEADER = struct.Struct("=QQIIII")
"""struct fiemap: start, length, flags, extents mapped, extents room, reserved."""
FIEMAP_EXTENT = struct.Struct("=QQQ16xI12x")
"""struct fiemap_extent: logical, physical, length, (reserved), flags, (reserved)."""
FIEMAP_EXTENT_LAST, FIEMAP_EXTENT_ENCODED, FIEMAP_EXTENT_SHARED = 0x1, 0x8, 0x2000
EXTENTS_PER_CALL = 256
WHOLE_FILE = 2**64 - 1


def _shared_ranges(descriptor: int) -> list[tuple[int, int]]:
    """The device byte ranges (start, end) of an open file's extents that other files share
    (clones); none where the file system does not say (no FIEMAP: ZFS, tmpfs; or no sharing: ext4).
    A compressed extent (Btrfs) is left out: its length is not what it takes on the device, so it
    counts whole in each file that shares it."""
    ranges: list[tuple[int, int]] = []
    start = 0
    try:
        while True:
            request = bytearray(FIEMAP_HEADER.size + EXTENTS_PER_CALL * FIEMAP_EXTENT.size)
            FIEMAP_HEADER.pack_into(request, 0, start, WHOLE_FILE - start, 0, 0, EXTENTS_PER_CALL, 0)
            fcntl.ioctl(descriptor, FS_IOC_FIEMAP, request)
            mapped = FIEMAP_HEADER.unpack_from(request)[3]
            if not mapped:
                return ranges
            for index in range(mapped):
                at = FIEMAP_HEADER.size + index * FIEMAP_EXTENT.size
                logical, physical, length, flags = FIEMAP_EXTENT.unpack_from(request, at)
                if flags & FIEMAP_EXTENT_SHARED and not flags & FIEMAP_EXTENT_ENCODED:
                    ranges.append((physical, physical + length))
                if flags & FIEMAP_EXTENT_LAST:
                    return ranges
            start = logical + length
    except OSError:
        return []


def _union_length(ranges: list[tuple[int, int]]) -> int:
    """The bytes the ranges cover, each byte once."""
    total, reached = 0, 0
    for start, end in sorted(ranges):
        if end > reached:
            total += end - max(start, reached)
            reached = end
    return total


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
            for name, stat in _landed_since(paths.landing / folder, since)
        )
    lakehouse = landing * LAKEHOUSE_BYTES_PER_LANDING_BYTE
    lakehouse += sum(_usage(paths.lakehouse / Path(*table.split(".", 1)))[0] for table in full_refresh)
    publishing = 0
    for database in served_files(paths.snapshots, read_pointer(paths.snapshot_pointer)).values():
        companions = [database, places_of(database)] + ([documents_of(database)] if full_refresh else [])
        publishing += sum(path.stat().st_size for path in companions if path.exists())
    return {"lakehouse": lakehouse, "publishing": publishing, "reserve": reserve_bytes}


def _landed_since(folder: Path, since: float | None) -> Iterator[tuple[str, os.stat_result]]:
    """(name, stat) of each file under `folder` last written at or after `since` (every file when None).

    The files of a folder last changed before `since` are not looked at: pages are written whole and
    renamed into place (`conf.files.write_atomically`), which changes their folder, and never written
    again. Every update estimates its writes, and a million listings' landing holds tens of
    thousands of pages. A folder that cannot be read is left out, as a walk of the tree leaves it.
    """
    try:
        entries = list(os.scandir(folder))
        # After listing: a page renamed in meanwhile has changed the folder, so it is looked at.
        changed = since is None or folder.stat().st_mtime >= since
    except OSError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from _landed_since(Path(entry.path), since)
        elif changed:
            with suppress(OSError):
                stat = entry.stat(follow_symlinks=False)
                if since is None or stat.st_mtime >= since:
                    yield entry.name, stat


def _last_commit(table: Path) -> float | None:
    """When a Delta table last committed (seconds since the epoch, its newest log entry); None before it exists."""
    commits = [stat.st_mtime for path, stat in _files(table / "_delta_log") if path.name.endswith(".json")]
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
