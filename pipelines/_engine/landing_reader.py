"""Reads landing files as the relation `landing.<entity>` (what Auto Loader gives on Databricks).

Columns: entity, operation, sync_id, fetched_at, record (the record's JSON text),
_corrupt_record (the raw line when it is not a JSON landing line), source_file.
A malformed line is kept, in `_corrupt_record`, never skipped.
"""

from pathlib import Path

import duckdb

LANDING_LINES_SQL = """
WITH lines AS (
  SELECT substr(filename, length($root) + 2) AS source_file, unnest(string_split(content, chr(10))) AS line
  FROM read_text($files)
), parsed AS (
  -- JSON functions only ever see valid JSON: DuckDB does not short-circuit CASE branches.
  SELECT source_file, line, CASE WHEN json_valid(line) THEN line END AS json_line
  FROM lines WHERE trim(line) <> ''
), landed AS (
  SELECT
    source_file,
    line,
    json_line ->> '$.entity' AS entity,
    json_line ->> '$.operation' AS operation,
    json_line ->> '$.sync_id' AS sync_id,
    json_line ->> '$.fetched_at' AS fetched_at,
    CASE WHEN json_type(json_line, '$.record') = 'OBJECT' THEN CAST(json_extract(json_line, '$.record') AS VARCHAR) END
      AS record
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


def landing_files(landing_root: Path, entity: str) -> list[str]:
    """Every landed page of `entity`, relative to the landing root, in landing order; hidden files skipped."""
    landing_root = Path(landing_root)
    root = landing_root / entity
    if not root.is_dir():
        return []
    return sorted(
        str(path.relative_to(landing_root))
        for path in root.glob("*/*/*.jsonl")
        if not any(part.startswith((".", "_")) for part in path.relative_to(root).parts)
    )


def register_landing(con: duckdb.DuckDBPyConnection, relation: str, landing_root: Path, files: list[str]) -> None:
    """Create temp table `relation` holding the lines of `files` (none: an empty table of the same shape).

    `source_file` is kept relative to the landing root, so the lakehouse can move with its data.
    """
    if files:
        root = str(Path(landing_root).resolve())
        absolute = [f"{root}/{name}" for name in files]
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {relation} AS {LANDING_LINES_SQL}", {"files": absolute, "root": root}
        )
    else:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {relation} AS {EMPTY_LANDING_SQL}")
