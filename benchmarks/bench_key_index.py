"""Finding the rows a merge replaces, against table size: a scan of the key column, and the key index.

    python -m benchmarks.bench_key_index [--rows 1100000,3300000,11000000] [--changed 1000] [--record]

For each size, a Delta table laid out like gold Media (11 rows per listing key, a unique media key
per row, files as the engine writes them) goes through merges of `--changed` random listing keys,
merge-on-read as an update does. Before each merge, the positions of the keys' rows, and of any row
holding a new row's unique media key, are found both ways in the same process, and must be the same
rows: by scanning the table's files (the engine below
MLS2_ENGINE_KEY_INDEX_CELLS cells), and through the key index (above it), which first catches up with the
merge before. The index's first build is timed apart, as is its size on disk.
Target (issue 29): the index's figure flat across sizes, where the scan's grows with the table.
"""

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from benchmarks.common import record
from pipelines._engine.key_index import KeyIndex, Layout, key_index
from pipelines._engine.lakehouse import FILE_COLUMN, KEY_INDEX_FOLDER, ROW_COLUMN, Lakehouse, register_delta

NAME = "bench.media"
ROWS_PER_KEY = 11
LAYOUT = Layout(lookups=("listing_key", "media_key"))
MERGES = 4


def create(lakehouse: Lakehouse, con: duckdb.DuckDBPyConnection, rows: int) -> None:
    keys = rows // ROWS_PER_KEY
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE seed AS SELECT md5(k::VARCHAR) AS listing_key, "
        f"'MEDIA_' || md5(k::VARCHAR || '-' || n::VARCHAR) AS media_key, n AS display_order, "
        f"'https://files.example/' || k || '/' || n || '.jpg' AS url "
        f"FROM range({keys}) a(k), range({ROWS_PER_KEY}) b(n)"
    )
    lakehouse.commit_files(lakehouse.write_files(con, NAME, "seed"), mode="overwrite")
    con.execute("DROP TABLE seed")


def batch(con: duckdb.DuckDBPyConnection, wanted: pa.Table, round_: int) -> None:
    """The keys' new rows (one photo fewer, new media keys), as the temporary table `batch`."""
    con.register("wanted", wanted)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE batch AS SELECT key AS listing_key, "
        f"'MEDIA_' || md5(key || '-r{round_}-' || n::VARCHAR) AS media_key, n AS display_order, "
        f"'https://files.example/' || key || '/r{round_}-' || n || '.jpg' AS url "
        f"FROM wanted, range({ROWS_PER_KEY - 1}) b(n)"
    )
    con.unregister("wanted")


def scan(lakehouse: Lakehouse, con: duckdb.DuckDBPyConnection, wanted: pa.Table) -> tuple[float, set]:
    """As a view refreshed by key finds them below the threshold: in one scan, the rows of the keys, and
    any row holding a new row's unique media key."""
    started = time.perf_counter()
    register_delta(con, "positions", lakehouse.table(NAME), positions=True)
    con.register("wanted", wanted)
    found = con.execute(
        f"SELECT {FILE_COLUMN}, {ROW_COLUMN} FROM positions WHERE listing_key IN (SELECT key FROM wanted) "
        f"OR media_key IN (SELECT media_key FROM batch)"
    ).fetchall()
    seconds = time.perf_counter() - started
    con.unregister("wanted")
    return seconds, set(found)


def through_index(lakehouse: Lakehouse, con: duckdb.DuckDBPyConnection, wanted: pa.Table) -> tuple[float, set]:
    """As a view refreshed by key finds them above the threshold: both lookups through the key index."""
    started = time.perf_counter()
    index: KeyIndex = key_index(lakehouse, NAME, LAYOUT)
    located = index.locate("listing_key", wanted.column("key"))
    new_keys = con.sql("SELECT media_key FROM batch").to_arrow_table().column(0)
    holding = index.locate("media_key", new_keys)
    seconds = time.perf_counter() - started
    found = set()
    for table in (located, holding):
        found |= set(zip(table.column(FILE_COLUMN).to_pylist(), table.column(ROW_COLUMN).to_pylist(), strict=True))
    return seconds, found


def merge(lakehouse: Lakehouse, con: duckdb.DuckDBPyConnection, positions: set) -> None:
    """The rows at `positions` replaced by `batch`, merge-on-read."""
    replaced = pa.table({FILE_COLUMN: [p[0] for p in positions], ROW_COLUMN: [p[1] for p in positions]})
    con.register("replaced_arrow", replaced)
    con.execute("CREATE OR REPLACE TEMP TABLE replaced AS SELECT * FROM replaced_arrow")
    con.unregister("replaced_arrow")
    written = lakehouse.write_files(con, NAME, "batch", per_thread=False)
    lakehouse.delete_and_add(con, NAME, "replaced", written)


def measure(root: Path, rows: int, changed: int) -> dict:
    lakehouse, con, draw = Lakehouse(root, key_index_cells=0), duckdb.connect(), random.Random(rows)
    create(lakehouse, con, rows)
    keys = rows // ROWS_PER_KEY
    started = time.perf_counter()
    key_index(lakehouse, NAME, LAYOUT).locate("listing_key", pa.array([], pa.string()))
    built = time.perf_counter() - started
    scans, lookups = [], []
    for round_ in range(MERGES):
        picked = con.execute(
            "SELECT md5(k::VARCHAR) FROM (SELECT unnest(?::BIGINT[]) AS k)", [draw.sample(range(keys), changed)]
        ).fetchall()
        wanted = pa.table({"key": [key for (key,) in picked]})
        batch(con, wanted, round_)
        scanned_seconds, scanned = scan(lakehouse, con, wanted)
        indexed_seconds, located = through_index(lakehouse, con, wanted)
        if scanned != located:
            raise SystemExit(f"{rows:,} rows, merge {round_}: the index located other rows than the scan")
        scans.append(scanned_seconds)
        lookups.append(indexed_seconds)
        merge(lakehouse, con, located)
    index_bytes = sum(file.stat().st_size for file in (root / KEY_INDEX_FOLDER).glob("*"))
    return {
        "rows": rows,
        "built": built,
        "index_mb": index_bytes / 2**20,
        "scan": statistics.median(scans),
        "index": statistics.median(lookups),
        "scans": scans,
        "lookups": lookups,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="1100000,3300000,11000000", help="table sizes, comma-separated")
    parser.add_argument("--changed", type=int, default=1_000, help="listing keys each merge replaces")
    parser.add_argument("--record", action="store_true", help="append the results to benchmarks/RESULTS.md")
    args = parser.parse_args()
    results = []
    for rows in (int(size) for size in args.rows.split(",")):
        with tempfile.TemporaryDirectory(prefix="mls2-bench-key-index-") as scratch:
            figures = measure(Path(scratch), rows, args.changed)
        results.append(figures)
        print(
            f"{rows:,} rows: scan {figures['scan'] * 1000:.0f} ms, key index {figures['index'] * 1000:.0f} ms "
            f"(medians of {MERGES}: {', '.join(f'{s * 1000:.0f}' for s in figures['scans'])} / "
            f"{', '.join(f'{s * 1000:.0f}' for s in figures['lookups'])}); index built in {figures['built']:.1f} s, "
            f"{figures['index_mb']:,.0f} MB"
        )
    if args.record:
        lines = [
            f"Rows of {args.changed:,} listing keys ({args.changed * ROWS_PER_KEY:,} rows) found before each of "
            f"{MERGES} merges, median (all four), the same rows both ways.",
            "",
            "| table rows | scan, ms | key index (with its catching up), ms | index built, s | index MB |",
            "|---|---|---|---|---|",
            *(
                f"| {r['rows']:,} | {r['scan'] * 1000:.0f} ({', '.join(f'{s * 1000:.0f}' for s in r['scans'])}) "
                f"| {r['index'] * 1000:.0f} ({', '.join(f'{s * 1000:.0f}' for s in r['lookups'])}) "
                f"| {r['built']:.1f} | {r['index_mb']:,.0f} |"
                for r in results
            ),
        ]
        record("Finding the rows a merge replaces: scan against key index", lines)


if __name__ == "__main__":
    main()
