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

from benchmarks.bench_pipeline import land_everything, run_pipeline
from benchmarks.common import record
from conf.settings import load_settings
from expectations.engines import EmbeddedEngine
from expectations.integrity import run_integrity
from expectations.suite_files import suites
from ingestion.sandbox import SandboxWorld

RUNS = 3


def datasets_only(settings) -> tuple[float, dict[str, float]]:
    """The suites' datasets computed by the embedded engine alone (the baseline): in all, and each."""
    started = time.perf_counter()
    each = {}
    with EmbeddedEngine(settings, "baseline") as engine:
        for suite in suites():
            for dataset in suite.datasets.values():
                if engine.name in dataset.engines:
                    begun = time.perf_counter()
                    engine.frame(dataset.sql, origin=dataset.name)
                    each[f"{suite.name}.{dataset.name}"] = time.perf_counter() - begun
    return time.perf_counter() - started, each


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
        measured = [datasets_only(settings) for _ in range(RUNS)]
        baseline = [total for total, _ in measured]
        slowest = sorted(measured[-1][1].items(), key=lambda item: -item[1])[:5]
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
            "Slowest datasets (last baseline run): " + ", ".join(f"{name} {sec:.1f} s" for name, sec in slowest) + ".",
            "",
            f"Target: the whole suite within 20 s: {'met' if min(timings) <= 20 else 'NOT met'}.",
        ]
        print("\n".join(lines))
        if args.record:
            record("Integrity suite", lines)


if __name__ == "__main__":
    main()
