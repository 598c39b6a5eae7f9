"""Integrity suite: every suite of expectations/suites over a whole brokerage's lakehouse.

    python -m benchmarks.bench_integrity [--properties 100000] [--record]

Landing comes from the sandbox's generator as in bench_pipeline; one `mls2 pipeline run`
(integrity off) builds the lakehouse; then the suite runs three times in this process. The
baseline, in the same run, is DuckDB computing the same datasets without Great Expectations: the
difference is what GX costs. Target on 2 cores: the whole suite within 20 s at 100,000 listings.
"""

import argparse
import tempfile
import time
from pathlib import Path

import duckdb

from benchmarks.bench_pipeline import land_everything, run_pipeline
from benchmarks.common import record
from conf.settings import load_settings
from expectations.integrity import register_context, register_lakehouse, run_integrity
from expectations.suite_files import suites
from ingestion.sandbox import SandboxWorld

RUNS = 3


def datasets_only(settings) -> float:
    """The suites' datasets computed by DuckDB alone (the baseline)."""
    started = time.perf_counter()
    con = duckdb.connect()
    register_lakehouse(con, settings.paths.lakehouse)
    register_context(con, settings)
    for suite in suites():
        for sql in suite.datasets.values():
            con.sql(sql).df()
    con.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--properties", type=int, default=100_000)
    parser.add_argument("--record", action="store_true", help="append the results to benchmarks/RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-integrity-") as folder:
        data = Path(folder) / "data"
        land_everything(SandboxWorld(seed=7, properties=args.properties), data / "landing")
        build = run_pipeline(data)
        settings = load_settings(mls2_data_dir=data)
        baseline = [datasets_only(settings) for _ in range(RUNS)]
        timings, failures = [], 0
        for _ in range(RUNS):
            started = time.perf_counter()
            result = run_integrity(settings)
            timings.append(time.perf_counter() - started)
            failures = len(result.critical_failures)
        lines = [
            f"{args.properties:,} listings (lakehouse built in {build['seconds']:.0f} s); "
            f"{len(result.results)} expectations, {failures} critical failures.",
            "",
            "| what | best of 3 | runs |",
            "| --- | ---: | --- |",
            f"| whole suite (GX, results table, Data Docs) | {min(timings):.1f} s | "
            + ", ".join(f"{t:.1f}" for t in timings)
            + " |",
            f"| baseline: the datasets by DuckDB alone | {min(baseline):.1f} s | "
            + ", ".join(f"{t:.1f}" for t in baseline)
            + " |",
            "",
            f"Target: the whole suite within 20 s: {'met' if min(timings) <= 20 else 'NOT met'}.",
        ]
        print("\n".join(lines))
        if args.record:
            record("Integrity suite", lines)


if __name__ == "__main__":
    main()
