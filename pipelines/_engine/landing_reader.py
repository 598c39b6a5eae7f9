"""Reads landing files as the relation `landing.<entity>` (what Auto Loader gives on Databricks).

Columns: entity, operation, sync_id, fetched_at, record (the record's JSON text),
_corrupt_record (the raw line when it is not a JSON landing line), source_file.
A malformed line is kept, in `_corrupt_record`, never skipped.
"""

import glob
from pathlib import Path

import duckdb

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
