"""Ingestion: full refresh of properties with their media from the sandbox on loopback.

    python -m benchmarks.bench_ingestion [--properties 100000] [--record]

Runs `mls2 sync --full-refresh --entities properties,projects,media/categories` (the
properties, the media inline with them, the projects whose media they inherit) as a
process of its own at 1, 4 and 8 requests in flight, against a 2-worker sandbox
process, and reports properties/s, HTTP calls per 1,000 properties and the sync's peak
memory. A second, smaller run shows memory is flat in the number of properties.
Baseline in the same run: the same pages fetched by 8 threads that only download them.
Targets: >= 1,000 properties/s at the best setting, <= 15 calls per 1,000 properties.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import requests

from benchmarks.common import SandboxProcess, record
from ingestion.sandbox import SANDBOX_API_KEY, SANDBOX_API_USER

ENTITIES = "properties,projects,media/categories"


def run_sync(sandbox: SandboxProcess, in_flight: int) -> dict:
    """One full refresh in its own process; returns its figures."""
    with tempfile.TemporaryDirectory(prefix="mls2-bench-") as data:
        env = {
            **os.environ,
            "QOBRIX_API_BASE_URL": sandbox.base_url,
            "QOBRIX_API_USER": SANDBOX_API_USER,
            "QOBRIX_API_KEY": SANDBOX_API_KEY,
            "MLS2_DATA_DIR": data,
        }
        command = [str(Path(sys.executable).with_name("mls2")), "sync", "--full-refresh", "--entities", ENTITIES]
        started = time.perf_counter()
        process = subprocess.Popen(
            [*command, "--max-in-flight", str(in_flight)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        if status != 0:
            raise RuntimeError(f"sync failed: {process.stderr.read().decode()[-2000:]}")
        manifest = orjson.loads(next(Path(data, "landing", "_manifests").glob("*.json")).read_bytes())
        properties = next(e["records"] for e in manifest["entities"] if e["entity"] == "properties")
        landed = sum(path.stat().st_size for path in Path(data, "landing").rglob("*.jsonl*"))
        return {
            "in_flight": in_flight,
            "seconds": seconds,
            "properties": properties,
            "calls": manifest["http_calls"],
            "per_1000": manifest["calls_per_1000_properties"],
            "peak_mb": usage.ru_maxrss / 1024,
            "landed_mb": landed / 2**20,
        }


def download_only(sandbox: SandboxProcess, properties: int, threads: int = 8) -> float:
    """Baseline: the same property pages fetched and discarded (no parsing, no landing)."""
    headers = {"X-Api-User": SANDBOX_API_USER, "X-Api-Key": SANDBOX_API_KEY}
    session = requests.Session()

    def fetch(page: int) -> int:
        params = {"limit": 100, "page": page, "expand": "false", "media": "true"}
        return len(session.get(f"{sandbox.base_url}/properties", params=params, headers=headers, timeout=120).content)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(fetch, range(1, properties // 100 + 1)))
    return properties / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--properties", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=20_000, help="size of the memory-flatness run")
    parser.add_argument("--record", action="store_true", help="append the figures to benchmarks/RESULTS.md")
    args = parser.parse_args()

    rows = [
        "| properties | in flight | seconds | properties/s | HTTP calls | calls / 1,000 properties "
        "| peak memory MB | landed MB |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def row(result: dict) -> str:
        rate = result["properties"] / result["seconds"]
        return (
            f"| {result['properties']:,} | {result['in_flight']} | {result['seconds']:.1f} | {rate:,.0f} "
            f"| {result['calls']:,} "
            f"| {result['per_1000']} | {result['peak_mb']:.0f} | {result['landed_mb']:.0f} |"
        )

    with SandboxProcess(properties=args.properties, workers=2) as sandbox:
        baseline = download_only(sandbox, args.properties)
        print(f"baseline: download only, 8 threads: {baseline:,.0f} properties/s", flush=True)
        for in_flight in (1, 4, 8):
            rows.append(row(run_sync(sandbox, in_flight)))
            print(rows[-1], flush=True)
    with SandboxProcess(properties=args.small, workers=2) as sandbox:
        rows.append(row(run_sync(sandbox, 4)))
        print(rows[-1], flush=True)
    rows.append("")
    rows.append(f"Baseline, same run: download only (8 threads, no parsing or landing): {baseline:,.0f} properties/s.")
    print("\n".join(rows))
    if args.record:
        record(f"Ingestion full refresh, properties with media, {args.properties:,} properties", rows)


if __name__ == "__main__":
    main()
