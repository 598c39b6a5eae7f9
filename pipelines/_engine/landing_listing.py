"""The landing's pages, listed by run folder and kept between updates.

Every page ever landed stays in the landing unless retired, and listing them all at each update grew
with the brokerage's history. A run folder (entity/day/run) whose modification and change times are
the ones kept is not listed again: landing, renaming or removing a page changes both, and the
change time cannot be set back (a copy that keeps modification times, such as `rsync -a`, still
changes it).
"""

import os
import time
from pathlib import Path

import orjson

from conf.files import read_kept, write_atomically
from pipelines._engine.landing_reader import PAGE_SUFFIXES

LISTING_FORMAT = 2
"""The layout of a kept listing: a file of another is not read."""
SETTLED_NS = 2_000_000_000
"""A run folder's pages are kept only once it has not changed for this long: a filesystem with coarse
times would leave a folder's times unchanged by a page landed in the same tick as a listing."""

Stamp = tuple[int, int]
"""A folder's modification and change times, in nanoseconds."""


class LandingListing:
    """The landing's pages (what `landing_reader.landing_files` lists), from the folders kept in a
    file between processes (`save`). Only a cache: a lost or damaged file, or one of another format,
    lists every folder again."""

    def __init__(self, landing_root: Path, path: Path) -> None:
        self.root, self.path = Path(landing_root), Path(path)
        self.folders: dict[str, tuple[Stamp, list[str]]] = {}
        """Each settled run folder's times and page names, by its path in the landing."""
        self.changed = False
        kept = read_kept(self.path, "format", LISTING_FORMAT)
        if kept is not None and isinstance(kept.get("folders"), dict):
            self.folders = {
                folder: ((entry[0], entry[1]), entry[2])
                for folder, entry in kept["folders"].items()
                if _well_formed(entry)
            }

    def pages(self, entity: str, *, relist: bool = False) -> list[str]:
        """Every landed page of `entity`, relative to the landing root, in landing order, listing only
        the run folders that changed (every folder with `relist`, as a full refresh does: it is the way
        back from a landing folder whose times were changed by hand). A run folder removed meanwhile
        has no pages; an unreadable one fails the update."""
        now, pages, seen = time.time_ns(), [], set()
        for day in _subfolders(self.root / entity):
            for run in _subfolders(self.root / entity / day):
                folder = f"{entity}/{day}/{run}"
                # Its times before its names: a page landed while it is listed changes the times
                # after those kept, so the folder is listed again next time.
                try:
                    status = (self.root / folder).stat()
                    stamp, kept = (status.st_mtime_ns, status.st_ctime_ns), self.folders.get(folder)
                    names = (
                        kept[1]
                        if kept is not None and kept[0] == stamp and not relist
                        else [name for name in os.listdir(self.root / folder) if _is_page(name)]
                    )
                except FileNotFoundError:
                    continue
                seen.add(folder)
                if now - max(stamp) > SETTLED_NS:
                    if kept != (stamp, names):
                        self.folders[folder], self.changed = (stamp, names), True
                elif kept is not None:
                    del self.folders[folder]
                    self.changed = True
                pages += [f"{folder}/{name}" for name in names]
        gone = [folder for folder in self.folders if folder.split("/", 1)[0] == entity and folder not in seen]
        for folder in gone:
            del self.folders[folder]
        self.changed = self.changed or bool(gone)
        return sorted(pages)

    def save(self) -> None:
        """Keep the settled folders' pages for the next update, when they changed."""
        if self.changed:
            kept = {folder: [*stamp, names] for folder, (stamp, names) in self.folders.items()}
            write_atomically(self.path, orjson.dumps({"format": LISTING_FORMAT, "folders": kept}))
            self.changed = False


def _subfolders(folder: Path) -> list[str]:
    """The folders in `folder` whose names start with neither `.` nor `_` (none when it does not exist)."""
    try:
        with os.scandir(folder) as entries:
            return [entry.name for entry in entries if not entry.name.startswith((".", "_")) and entry.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _is_page(name: str) -> bool:
    """Whether a run folder's file is a landing page: a page's suffix, not hidden or underscored."""
    return name.endswith(PAGE_SUFFIXES) and not name.startswith((".", "_"))


def _well_formed(entry: object) -> bool:
    """Whether a kept folder has the shape `save` writes (any other is listed again)."""
    return (
        isinstance(entry, list)
        and len(entry) == 3
        and all(isinstance(value, int) for value in entry[:2])
        and isinstance(entry[2], list)
        and all(isinstance(name, str) for name in entry[2])
    )
