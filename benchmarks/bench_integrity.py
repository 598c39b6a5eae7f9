"""Integrity suite: every suite of expectations/suites over a whole brokerage's lakehouse, whole and by key.

    python -m benchmarks.bench_integrity [--properties 100000] [--updates 1000 100] [--record]

Landing comes from the sandbox's generator as in bench_pipeline; one `mls2 pipeline run`
(integrity off) builds the lakehouse; then the suite runs whole three times in this process. The
baseline, in the same run, is DuckDB computing the same datasets without Great Expectations: the
difference is what GX costs. Then, for each of `--updates`, that many listings change, are landed
and updated, and the suite runs by key (as after an update), then whole on the same tables: the
whole run is the baseline of the run by key. Target on 2 cores: the whole suite within 20 s at
100,000 listings.
"""

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.bench_pipeline import land_everything, run_pipeline, write_entity
from benchmarks.common import record
from conf.settings import load_settings
from expectations.engines import EmbeddedEngine
from expectations.integrity import run_integrity
from expectations.suite_files import suites
from ingestion.landing import LandingWriter
from ingestion.sandbox import SandboxWorld
from ingestion.sandbox.world import Changes

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
    parser.add_argument("--updates", type=int, nargs="*", default=[1000, 100], help="listings changed per update")
    parser.add_argument("--runs", type=int, default=RUNS, help="whole runs (and baseline runs) before the updates")
    parser.add_argument("--record", action="store_true", help="append the results to benchmarks/RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-integrity-") as folder:
        data = Path(folder) / "data"
        world = SandboxWorld(seed=7, properties=args.properties)
        land_everything(world, data / "landing")
        build = run_pipeline(data)
        settings = load_settings(mls2_data_dir=data)
        measured = [datasets_only(settings) for _ in range(args.runs)]
        baseline = [total for total, _ in measured]
        slowest = sorted(measured[-1][1].items(), key=lambda item: -item[1])[:5]
        timings, failures = [], 0
        for _ in range(args.runs):
            started = time.perf_counter()
            result = run_integrity(settings)
            timings.append(time.perf_counter() - started)
            failures = len(result.critical_failures)
        lines = [
            f"{args.properties:,} listings (lakehouse built in {build['seconds']:.0f} s); "
            f"{len(result.results)} expectations, {failures} critical failures.",
            "",
            f"| what | best of {args.runs} | runs |",
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
        lines += ["", "| update | by key (GX, results table) | whole, same tables | keys checked (property / media) |"]
        lines += ["| --- | ---: | ---: | --- |"]
        for number, size in enumerate(args.updates, start=2):
            report = world.advance(changes={"properties": Changes(updates=size)})
            stamp = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=15 * (number - 1))
            writer = LandingWriter(str(data / "landing"), f"{stamp:%Y%m%dT%H%M%SZ}-bench{number}", started=stamp)
            write_entity(world, writer, "properties", report.changed["properties"]["updated"])
            run_pipeline(data)
            started = time.perf_counter()
            by_key = run_integrity(settings, by_key=True)
            keyed = time.perf_counter() - started
            started = time.perf_counter()
            whole = run_integrity(settings)
            whole_seconds = time.perf_counter() - started
            checked = {r.dataset: r.changed_keys for r in by_key.results if r.scope == "by key"}
            same = {(r.dataset, r.expectation, r.success) for r in by_key.results} == {
                (r.dataset, r.expectation, r.success) for r in whole.results
            }
            lines.append(
                f"| {size:,} changed | {keyed:.1f} s | {whole_seconds:.1f} s | {checked.get('property', 0):,} / "
                f"{checked.get('media', 0):,}{'' if same else ' (verdicts differ!)'} |"
            )
        print("\n".join(lines))
        if args.record:
            record("Integrity suite", lines)


if __name__ == "__main__":
    main()
