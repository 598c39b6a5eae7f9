"""Reads landing files as the relation `landing.<entity>` (what Auto Loader gives on Databricks).

Columns: entity, operation, sync_id, fetched_at, record (the record's JSON text),
_corrupt_record (the raw line when it is not a JSON landing line), source_file.
A malformed line is kept, in `_corrupt_record`, never skipped.
"""

import glob
import os
import time
from pathlib import Path

import duckdb
import orjson

from conf.files import write_atomically
from pipelines._engine.sql_text import string_literal

LANDING_LINES_SQL = """
WITH lines AS (
  -- One column a line: NUL never occurs in a landing line; a line with one would not parse and fail loudly.
  -- A line (a record, or a malformed page kept whole) up to 64 MiB; a longer one fails the update
  -- naming the file. DuckDB allocates the buffer whole for each compressed file it reads (its
  -- default, 16 lines, did not fit the memory limit), and drops without a word a line longer than
  -- the buffer: 4 lines, so a line too long fails loudly up to 256 MiB.
  SELECT substr(filename, length($root) + 2) AS source_file, line
  FROM read_csv($files, columns = {'line': 'VARCHAR'}, delim = '\\0', quote = '', escape = '', header = false,
                auto_detect = false, filename = true, max_line_size = 67108864, buffer_size = 268435456)
  -- Blank lines are skipped; a regex stops at the first character, trim() decodes every one of a long line.
  WHERE line IS NOT NULL AND regexp_matches(line, '[^[:space:]]')
), parsed AS (
  -- Each line is parsed once, every field in one extraction; a line that is not JSON gives NULL (try).
  SELECT source_file, line,
    try(json_extract(line, ['$.entity', '$.operation', '$.sync_id', '$.fetched_at', '$.record'])) AS head
  FROM lines
), landed AS (
  -- The fields come as JSON values: a record that is not an object (a string, a number) is not one.
  SELECT source_file, line, head[1] ->> '$' AS entity, head[2] ->> '$' AS operation, head[3] ->> '$' AS sync_id,
    head[4] ->> '$' AS fetched_at, CASE WHEN starts_with(head[5], '{') THEN CAST(head[5] AS VARCHAR) END AS record
  FROM parsed
)
SELECT entity, operation, sync_id, fetched_at, record,
       CASE WHEN record IS NULL THEN line END AS _corrupt_record,
       source_file
FROM landed
"""

EMPTY_LANDING_SQL = """
SELECT NULL::VARCHAR AS entity, NULL::VARCHAR AS operation, NULL::VARCHAR AS sync_id, NULL::VARCHAR AS fetched_at,
       NULL::VARCHAR AS record, NULL::VARCHAR AS _corrupt_record, NULL::VARCHAR AS source_file
WHERE false
"""


PAGE_SUFFIXES = (".jsonl.gz", ".jsonl")
"""Landing pages: gzip-compressed JSON Lines, or uncompressed as earlier versions landed them (DuckDB
decompresses by the extension, file by file)."""


def landing_files(landing_root: Path, entity: str) -> list[str]:
    """Every landed page of `entity`, relative to the landing root, in landing order; hidden files skipped."""
    # glob's strings, not Path objects: an update lists every page of every entity.
    return sorted(
        f"{entity}/{page}"
        for page in glob.glob("*/*/*.jsonl*", root_dir=Path(landing_root) / entity)
        if page.endswith(PAGE_SUFFIXES) and not any(part.startswith((".", "_")) for part in page.split("/"))
    )


LISTING_FORMAT = 1
"""The layout of a kept listing (`LandingListing`): a file of another is not read."""
SETTLED_NS = 2_000_000_000
"""A run folder's pages are kept only once its modification time is this old: a filesystem with
coarse times would leave a folder's time unchanged by a page landed in the same tick as a listing."""


class LandingListing:
    """The landing's pages (`landing_files`), kept by run folder (entity/day/run) with the folder's
    modification time: a folder whose time is the one kept is not listed again, since landing,
    renaming or removing a page changes it. Every page ever landed stays in the landing unless
    retired, and listing them all at each update grew with the brokerage's history.

    Kept in a file between processes (`save`). Only a cache: a lost or damaged file, or one of another
    format, lists every folder again."""

    def __init__(self, landing_root: Path, path: Path) -> None:
        self.root, self.path = Path(landing_root), Path(path)
        self.folders: dict[str, tuple[int, list[str]]] = {}
        """Each settled run folder's modification time (ns) and page names, by its path in the landing."""
        self.changed = False
        try:
            kept = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return
        if isinstance(kept, dict) and kept.get("format") == LISTING_FORMAT and isinstance(kept.get("folders"), dict):
            self.folders = {
                folder: (entry[0], entry[1]) for folder, entry in kept["folders"].items() if _well_formed(entry)
            }

    def pages(self, entity: str) -> list[str]:
        """What `landing_files(landing_root, entity)` lists, listing only the run folders that changed."""
        now, pages, seen = time.time_ns(), [], set()
        for day in _subfolders(self.root / entity):
            for run in _subfolders(self.root / entity / day):
                folder = f"{entity}/{day}/{run}"
                seen.add(folder)
                modified = (self.root / folder).stat().st_mtime_ns
                kept = self.folders.get(folder)
                if kept is not None and kept[0] == modified:
                    names = kept[1]
                else:
                    names = [name for name in os.listdir(self.root / folder) if _is_page(name)]
                    if now - modified > SETTLED_NS:
                        self.folders[folder], self.changed = (modified, names), True
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
            kept = {folder: [modified, names] for folder, (modified, names) in self.folders.items()}
            write_atomically(self.path, orjson.dumps({"format": LISTING_FORMAT, "folders": kept}))
            self.changed = False


def _subfolders(folder: Path) -> list[str]:
    """The folders in `folder` that are not hidden (none when it does not exist)."""
    try:
        with os.scandir(folder) as entries:
            return [entry.name for entry in entries if not entry.name.startswith((".", "_")) and entry.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _is_page(name: str) -> bool:
    return name.endswith(PAGE_SUFFIXES) and not name.startswith((".", "_"))


def _well_formed(entry: object) -> bool:
    """Whether a kept folder has the shape `save` writes (any other is listed again)."""
    return (
        isinstance(entry, list)
        and len(entry) == 2
        and isinstance(entry[0], int)
        and isinstance(entry[1], list)
        and all(isinstance(name, str) for name in entry[1])
    )


def register_landing(con: duckdb.DuckDBPyConnection, relation: str, landing_root: Path, files: list[str]) -> None:
    """Create temp view `relation` over the lines of `files` (none: an empty relation of the same shape).

    A view, not a copy: the consumer's batch is the one place the parsed lines are held (copying
    them first took a large share of bronze's time). `source_file` is kept relative to the landing
    root, so the lakehouse can move with its data.
    """
    if files:
        root = str(Path(landing_root).resolve())
        listed = "[" + ", ".join(string_literal(f"{root}/{name}") for name in files) + "]"
        body = LANDING_LINES_SQL.replace("$root", string_literal(root)).replace("$files", listed)
    else:
        body = EMPTY_LANDING_SQL
    con.execute(f"DROP VIEW IF EXISTS {relation}")
    con.execute(f"CREATE TEMP VIEW {relation} AS {body}")
