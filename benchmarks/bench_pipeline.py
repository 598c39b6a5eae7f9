"""Pipeline: a full refresh of a whole brokerage to gold, then incremental updates (1% changes, then 100).

    python -m benchmarks.bench_pipeline [--properties 100000] [--updates 1000,100] [--spark] [--scan-baseline]
        [--long-lived] [--served] [--record]

Landing files come from the sandbox's generator (no HTTP): every entity, properties and
projects with their media inline, in the pages a sync writes. Each update runs as
`mls2 pipeline run` in a process of its own (wall time and peak memory of that process).
With `--spark`, the same SQL bodies run on a local Spark session over the same landing
files, in the same run, as the baseline (benchmarks/spark_baseline.py). With `--scan-baseline`, every
second update finds the rows it replaces by scanning the tables' key columns instead of through key
indexes (the engine's way before them), as their baseline in the same run. With `--long-lived`, the
same sizes of update follow again in one long-lived process (`benchmarks.update_service`), as the
pipeline UI's server runs them: without starting Python, importing and building the graph each time.
With `--served`, the same sizes once more through `mls2 serve`: each `mls2 pipeline run` sends its
update to the server, as it does whenever one serves the data folder (the shell's wall time; the
server's peak memory).
Targets on 2 cores, at 100,000 properties: full refresh <= 60 s, 1% incremental <= 5 s to gold,
100 changed <= 2 s, peak memory < 3 GB; at 1,000,000: full refresh <= 10 min, 1,000 changed <= 8 s. Each run is
also split into the update to gold and the publish for serving after it (the pointer records when
the publish began and ended).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import orjson
import requests

from benchmarks.common import record
from conf.entities import entities
from conf.settings import DataPaths, load_settings
from ingestion.landing import LandingWriter
from ingestion.sandbox import SandboxWorld
from ingestion.sandbox.world import Changes
from pipelines._engine.events import read_events
from pipelines._engine.lakehouse import KEY_INDEX_FOLDER, Lakehouse, register_delta
from pipelines.embedded import disk_by_layer
from pipelines.snapshot import publishing_seconds, read_pointer
from pipelines.ui.runs import RunLog

PAGE = 100
INLINE_MEDIA = ("properties", "projects")


def write_entity(world: SandboxWorld, writer: LandingWriter, name: str, ids: list[str] | None = None) -> int:
    """Land every live record of an entity (or those of `ids`) the way a sync does; returns the count."""
    entity = entities()[name]
    if name not in INLINE_MEDIA:
        records, _ = world.list_records(name, limit=10**9, expand=False, media=False)
        for start in range(0, len(records), PAGE):
            writer.write_page(entity, records[start : start + PAGE])
        return len(records)
    wanted = set(ids) if ids is not None else world.live_ids(name)
    indices = [i for i in range(world.states[name].total) if world.generator.id(name, i) in wanted]
    fetched_at = datetime.now(UTC).isoformat()
    head = orjson.dumps({"entity": name, "operation": "upsert", "sync_id": writer.sync_id, "fetched_at": fetched_at})
    for start in range(0, len(indices), PAGE):
        lines = b"".join(
            head[:-1] + b',"record":' + world.render(name, i, expand=False, media=True) + b"}\n"
            for i in indices[start : start + PAGE]
        )
        writer.write_lines(entity, lines)
    return len(indices)


def land_everything(world: SandboxWorld, landing: Path) -> dict[str, int]:
    writer = LandingWriter(str(landing), "20260101T000000Z-bench1", started=datetime(2026, 1, 1, tzinfo=UTC))
    return {name: write_entity(world, writer, name) for name in entities()}


def update_environment(data: Path, environment: dict[str, str] | None = None) -> dict[str, str]:
    # The update alone: the integrity suite after it has its own benchmark (bench_integrity).
    return {**os.environ, "MLS2_DATA_DIR": str(data), "MLS2_INTEGRITY_AFTER_UPDATE": "false", **(environment or {})}


def run_pipeline(data: Path, *extra: str, publish: bool = True, environment: dict[str, str] | None = None) -> dict:
    """`mls2 pipeline run` in its own process: wall seconds, the seconds of its publish for serving
    (none when gold did not change) and the rest (the update to gold), and peak memory. Without
    `publish`, the update to gold alone (`benchmarks.update_to_gold`). `environment` adds settings."""
    before = read_pointer(DataPaths(data).snapshot_pointer)
    mls2 = str(Path(sys.executable).with_name("mls2"))
    command = (
        [mls2, "pipeline", "run", *extra] if publish else [sys.executable, "-m", "benchmarks.update_to_gold", *extra]
    )
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=update_environment(data, environment), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise RuntimeError(f"pipeline run failed: {process.stderr.read().decode()[-3000:]}")
    return with_split(data, before, seconds, usage.ru_maxrss / 1024)


def with_split(data: Path, before: dict | None, seconds: float, peak_mb: float) -> dict:
    """An update's wall seconds split into its publish for serving (from the pointer it wrote, if it
    published) and the rest, with its own time in the event log and the peak memory given."""
    after = read_pointer(DataPaths(data).snapshot_pointer)
    publishing = publishing_seconds(after) if after and after != before else 0.0
    return {
        "seconds": seconds,
        "gold_seconds": seconds - publishing,
        "publish_seconds": publishing,
        "update_seconds": update_seconds(data),
        "peak_mb": peak_mb,
    }


class ServingProcess:
    """`mls2 serve` on the data folder: `mls2 pipeline run` sends it the updates. Peak memory is the
    server's so far."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.paths = DataPaths(data)
        self.output = (data.parent / "serve.log").open("w+b")
        mls2 = str(Path(sys.executable).with_name("mls2"))
        self.process = subprocess.Popen(
            [mls2, "serve", "--port", "0", "--no-access-log"],
            env=update_environment(data),
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise self.failure()
            time.sleep(0.2)

    def _answers(self) -> bool:
        """Whether the server has announced itself and answers."""
        try:
            url = orjson.loads(self.paths.server_announcement.read_bytes())["url"]
            return requests.get(f"{url}/health", timeout=2).ok
        except (OSError, ValueError, KeyError, requests.RequestException):
            return False

    def failure(self) -> RuntimeError:
        self.output.seek(0)
        return RuntimeError(f"mls2 serve failed: {self.output.read().decode()[-3000:]}")

    def update(self) -> dict:
        figures = run_pipeline(self.data)
        [run] = RunLog(load_settings(mls2_data_dir=self.data)).runs(limit=1)
        [created] = read_events(self.data / "lakehouse", event_type="create_update", limit=1)
        if (run.run_id, run.state) != (created["update_id"], "COMPLETED"):
            raise RuntimeError(f"the update did not run on the server: its latest run is {run}")
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        peak_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
        return {**figures, "peak_mb": peak_kb / 1024}

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(60)
        self.output.close()


class UpdateService:
    """`benchmarks.update_service`: one process kept between updates, as the pipeline UI's server is.
    Its peak memory is the process's so far."""

    def __init__(self, data: Path, *, publish: bool) -> None:
        self.data = data
        self.errors = (data.parent / "update_service.log").open("w+b")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.update_service", *([] if publish else ["--no-publish"])],
            env=update_environment(data),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
        )

    def failure(self) -> RuntimeError:
        self.process.wait()
        self.errors.seek(0)
        return RuntimeError(f"the update service failed: {self.errors.read().decode()[-3000:]}")

    def update(self) -> dict:
        before = read_pointer(DataPaths(self.data).snapshot_pointer)
        self.process.stdin.write(b"update\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise self.failure()
        figures = orjson.loads(answer)
        return with_split(self.data, before, figures["seconds"], figures["peak_mb"])

    def close(self) -> None:
        self.process.stdin.close()
        if self.process.wait() != 0:
            raise self.failure()
        self.errors.close()


def land_changes(world: SandboxWorld, data: Path, number: int, size: int) -> int:
    """Change `size` properties in the sandbox and land them as sync `number` does; returns how many changed."""
    report = world.advance(changes={"properties": Changes(updates=size)})
    stamp = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=15 * (number - 1))
    writer = LandingWriter(str(data / "landing"), f"{stamp:%Y%m%dT%H%M%SZ}-bench{number}", started=stamp)
    updated = report.changed["properties"]["updated"]
    write_entity(world, writer, "properties", updated)
    return len(updated)


SLOWEST_FLOWS = 5


def slowest_flows(data: Path) -> str:
    """The latest update's slowest flows, each from its RUNNING event to its last, as `name seconds`."""
    started: dict[str, datetime] = {}
    seconds: dict[str, float] = {}
    for event in read_events(data / "lakehouse", event_type="flow_progress", limit=10_000):
        status, name = orjson.loads(event["details"])["flow_progress"]["status"], event["dataset"]
        if status == "RUNNING":
            started[name] = event["timestamp"]
        elif name in started:
            seconds[name] = (event["timestamp"] - started[name]).total_seconds()
    slowest = sorted(seconds.items(), key=lambda item: -item[1])[:SLOWEST_FLOWS]
    return ", ".join(f"{name} {taken:.1f}s" for name, taken in slowest)


def update_seconds(data: Path) -> float:
    """The latest update's own time in the event log, from its first event to its last: the update as
    a long-lived process (the UI's, a schedule's) runs it, without starting Python and importing."""
    stamps = [event["timestamp"] for event in read_events(data / "lakehouse", limit=10_000)]
    return (max(stamps) - min(stamps)).total_seconds()


DISK_GROUPS = ("landing", "lakehouse", "snapshots")
KEY_INDEX_LAYER = f"lakehouse/{KEY_INDEX_FOLDER}"
SCANNING = {"MLS2_ENGINE_KEY_INDEX_CELLS": str(2**62)}
"""The settings of an update that finds replaced rows by scanning, whatever the tables' size."""


def disk_mb(data: Path) -> dict[str, float]:
    """MB on disk of the landing zone, the lakehouse (its key indexes also apart) and the serving
    snapshots (`mls2 pipeline storage`)."""
    usage = dict.fromkeys(DISK_GROUPS, 0.0)
    for layer in disk_by_layer(DataPaths(data)):
        group = layer.name.split("/", 1)[0]
        if group in usage:
            usage[group] += layer.bytes / 2**20
        if layer.name == KEY_INDEX_LAYER:
            usage["key indexes"] = layer.bytes / 2**20
    return usage


def disk_text(usage: dict[str, float]) -> str:
    return ", ".join(f"{group} {mb:,.0f} MB" for group, mb in usage.items())


def split(figures: dict) -> str:
    return (
        f"{figures['gold_seconds']:.1f}s to gold + {figures['publish_seconds']:.1f}s publishing; "
        f"the update's own events span {figures['update_seconds']:.1f}s"
    )


def gold_counts(data: Path) -> dict[str, int]:
    lakehouse, con = Lakehouse(data / "lakehouse"), duckdb.connect()
    counts = {}
    for table in ("property", "media", "member", "contacts", "showing_appointment"):
        register_delta(con, "gold", lakehouse.table(f"reso_gold.{table}"))
        [(counts[table],)] = con.execute("SELECT count(*) FROM gold").fetchall()
    return counts


def table_row(run: str, figures: dict, properties: int | None = None, media: int | None = None) -> str:
    counted = [f"{n:,}" if n is not None else "" for n in (properties, media)]
    peak = f"{figures['peak_mb']:,.0f}" if "peak_mb" in figures else ""
    parts = [
        f"{figures[part]:.1f}" if part in figures else ""
        for part in ("gold_seconds", "publish_seconds", "update_seconds")
    ]
    return (
        f"| {run} | {counted[0]} | {counted[1]} | {figures['seconds']:.1f} | {parts[0]} | {parts[1]} | {parts[2]} "
        f"| {peak} |"
    )


def report_update(data: Path, figures: dict, changed: int, how: str) -> dict:
    """Print an incremental update's figures, with its slowest flows and the disk after it; returns them."""
    figures.update(changed=changed, how=how, flows=slowest_flows(data), disk=disk_mb(data))
    print(
        f"incremental ({changed:,} changed{how}): {figures['seconds']:.1f}s ({split(figures)}), "
        f"{figures['peak_mb']:,.0f} MB"
    )
    print(f"  slowest flows: {figures['flows']}")
    print(f"  disk: {disk_text(figures['disk'])}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--properties", type=int, default=100_000)
    parser.add_argument("--changed", type=float, default=0.01, help="fraction of properties changed for the increment")
    parser.add_argument(
        "--updates",
        type=lambda text: [int(n) for n in text.split(",")],
        help="changed properties of each incremental update, in order (default: --changed of them, then 100)",
    )
    parser.add_argument(
        "--no-publish", action="store_true", help="updates to gold only, no serving snapshot (for 1,000,000 listings)"
    )
    parser.add_argument("--spark", action="store_true", help="also run the Spark baseline")
    parser.add_argument(
        "--scan-baseline",
        action="store_true",
        help="every second update finds the rows it replaces by scanning, not through key indexes (the baseline)",
    )
    parser.add_argument(
        "--long-lived",
        action="store_true",
        help="then the same updates again in one long-lived process, as the pipeline UI's server runs them",
    )
    parser.add_argument(
        "--served",
        action="store_true",
        help="then the same updates again sent by `mls2 pipeline run` to a running `mls2 serve`",
    )
    parser.add_argument("--record", action="store_true", help="append the results to benchmarks/RESULTS.md")
    args = parser.parse_args()
    if args.served and args.no_publish:
        parser.error("--served needs publishing: a server publishes each update it runs")

    world = SandboxWorld(seed=42, properties=args.properties)
    with tempfile.TemporaryDirectory(prefix="mls2-bench-pipeline-") as scratch:
        data = Path(scratch) / "data"
        started = time.perf_counter()
        landed = land_everything(world, data / "landing")
        landing_mb = sum(p.stat().st_size for p in (data / "landing").rglob("*.jsonl*")) / 2**20
        print(
            f"landed {landed['properties']:,} properties ({landing_mb:,.0f} MB) in {time.perf_counter() - started:.0f}s"
        )

        publish = not args.no_publish
        full = run_pipeline(data, "--full-refresh", publish=publish)
        counts = gold_counts(data)
        full["disk"] = disk_mb(data)
        print(f"full refresh: {full['seconds']:.1f}s ({split(full)}), peak {full['peak_mb']:,.0f} MB, gold {counts}")
        print(f"  disk: {disk_text(full['disk'])}")
        full["flows"] = slowest_flows(data)
        print(f"  slowest flows: {full['flows']}")

        sizes = args.updates or [int(args.properties * args.changed), 100]
        incrementals = []
        for number, size in enumerate(sizes, start=2):
            changed = land_changes(world, data, number, size)
            scanning = args.scan_baseline and number % 2 == 1
            incremental = run_pipeline(data, publish=publish, environment=SCANNING if scanning else None)
            incrementals.append(report_update(data, incremental, changed, ", scanning" if scanning else ""))

        quiet = run_pipeline(data, publish=publish)
        print(f"nothing new: {quiet['seconds']:.1f}s")

        long_lived, warm_up = [], None
        if args.long_lived:
            service = UpdateService(data, publish=publish)
            warm_up = service.update()
            print(f"long-lived process, its first update (nothing new): {warm_up['seconds']:.1f}s")
            for number, size in enumerate(sizes, start=2 + len(sizes)):
                changed = land_changes(world, data, number, size)
                long_lived.append(report_update(data, service.update(), changed, ", long-lived process"))
            service.close()

        served, served_warm_up = [], None
        if args.served:
            server = ServingProcess(data)
            served_warm_up = server.update()
            print(f"sent to `mls2 serve`, its first update (nothing new): {served_warm_up['seconds']:.1f}s")
            for number, size in enumerate(sizes, start=2 + len(sizes) * (1 + args.long_lived)):
                changed = land_changes(world, data, number, size)
                served.append(report_update(data, server.update(), changed, ", sent to `mls2 serve`"))
            server.close()

        spark = None
        if args.spark:
            from benchmarks.spark_baseline import run_on_spark

            spark = run_on_spark(data / "landing", Path(scratch) / "spark")
            print(f"spark baseline (same SQL, local[2]): {spark['seconds']:.1f}s")

    if args.record:
        lines = [
            "| run | properties | media rows in gold | seconds | to gold | publishing | update's events "
            "| peak memory MB |",
            "|---|---|---|---|---|---|---|---|",
            table_row("full refresh (embedded)", full, counts["property"], counts["media"]),
            *(
                table_row(f"incremental, {run['changed']:,} changed{run['how']} (embedded)", run)
                for run in incrementals
            ),
            table_row("nothing new (embedded)", quiet),
        ]
        if warm_up:
            lines.append(table_row("long-lived process: its first update, nothing new (embedded)", warm_up))
        lines += [
            table_row(f"incremental, {run['changed']:,} changed{run['how']} (embedded)", run) for run in long_lived
        ]
        if served_warm_up:
            lines.append(table_row("`mls2 serve`: its first update, nothing new (embedded)", served_warm_up))
        lines += [table_row(f"incremental, {run['changed']:,} changed{run['how']} (embedded)", run) for run in served]
        if long_lived or served:
            lines += [
                "",
                "Peak memory of the long-lived process's and the server's updates: the process's, up to that update. "
                "Seconds of an update sent to `mls2 serve`: the wall time of the `mls2 pipeline run` that sent it.",
            ]
        if spark:
            lines.append(
                table_row("full refresh, same SQL on Spark local[2]", spark, spark["properties"], spark["media"])
            )
        groups = [*DISK_GROUPS, "key indexes"]
        lines += [
            "",
            "| disk after | " + " | ".join(f"{group} MB" for group in groups) + " |",
            "|---|" + "---|" * len(groups),
            *(
                f"| {run} | " + " | ".join(f"{figures['disk'].get(group, 0):,.0f}" for group in groups) + " |"
                for run, figures in [
                    ("full refresh", full),
                    *(
                        (f"update {number} ({run['changed']:,} changed{run['how']})", run)
                        for number, run in enumerate(incrementals + long_lived + served, 1)
                    ),
                ]
            ),
        ]
        lines += [
            "",
            f"Landing: {landing_mb:,.0f} MB of gzip-compressed JSON lines.",
            f"Slowest flows of the full refresh: {full['flows']}.",
            *(
                f"Slowest flows of the incremental of {run['changed']:,}{run['how']}: {run['flows']}."
                for run in incrementals + long_lived + served
            ),
        ]
        if spark:
            lines.append(
                f"Baseline: Spark / embedded = {spark['seconds'] / full['gold_seconds']:.1f}x on the full refresh to "
                f"gold ({spark['seconds'] / full['seconds']:.1f}x with publishing, which Spark does not do)."
            )
        unpublished = ", to gold only (nothing published)" if args.no_publish else ""
        record(f"Pipeline full refresh and incremental updates, {args.properties:,} properties{unpublished}", lines)


if __name__ == "__main__":
    main()
