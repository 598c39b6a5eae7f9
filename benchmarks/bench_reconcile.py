"""Reconciliation: what finding hard deletes costs, against the full refresh that was the only way.

    python -m benchmarks.bench_reconcile [--properties 20000] [--record]

Against a 2-worker sandbox process: a full refresh of properties lands the brokerage; the sandbox
then hard-deletes 0.1% of its listings and edits 0.5%. Each way of catching up then runs as
`mls2 sync --entities properties` in a process of its own, from a copy of the same data directory:
a plain incremental sync (the baseline: sees the edits, not the deletes), the same with
`--reconcile`, and `--full-refresh`. For each: seconds, HTTP calls, bytes landed, deletes landed.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import requests

from benchmarks.common import SandboxProcess, record
from ingestion.sandbox import SANDBOX_API_KEY, SANDBOX_API_USER


def run_sync(sandbox: SandboxProcess, data: Path, *options: str) -> dict:
    """`mls2 sync --entities properties` with `options`, in its own process: the figures of its manifest."""
    env = {
        **os.environ,
        "QOBRIX_API_BASE_URL": sandbox.base_url,
        "QOBRIX_API_USER": SANDBOX_API_USER,
        "QOBRIX_API_KEY": SANDBOX_API_KEY,
        "MLS2_DATA_DIR": str(data),
        "MLS2_RECONCILE_EVERY_HOURS": "0",
    }
    manifests = Path(data, "landing", "_manifests")
    before = set(manifests.glob("*.json")) if manifests.exists() else set()
    landed_before = sum(path.stat().st_size for path in Path(data, "landing").rglob("*.jsonl*"))
    command = [str(Path(sys.executable).with_name("mls2")), "sync", "--entities", "properties", *options]
    started = time.perf_counter()
    finished = subprocess.run(command, env=env, capture_output=True, check=False)
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        raise RuntimeError(f"sync failed: {finished.stderr.decode()[-2000:]}")
    [manifest_path] = set(manifests.glob("*.json")) - before
    manifest = orjson.loads(manifest_path.read_bytes())
    [properties] = [entity for entity in manifest["entities"] if entity["entity"] == "properties"]
    landed = sum(path.stat().st_size for path in Path(data, "landing").rglob("*.jsonl*")) - landed_before
    return {
        "seconds": seconds,
        "calls": manifest["http_calls"],
        "landed_mb": landed / 2**20,
        "records": properties["records"],
        "deletes": properties["deletes"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--properties", type=int, default=20_000)
    parser.add_argument("--record", action="store_true", help="append the figures to benchmarks/RESULTS.md")
    args = parser.parse_args()
    deletes, edits = max(1, args.properties // 1000), max(1, args.properties // 200)
    rows = [
        "| catching up with | seconds | HTTP calls | landed MB | records landed | deletes landed |",
        "|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="mls2-bench-reconcile-") as scratch:
        synced = Path(scratch, "synced")
        with SandboxProcess(properties=args.properties, workers=2) as sandbox:
            first = run_sync(sandbox, synced, "--full-refresh")
            print(f"landed {args.properties:,} properties in {first['seconds']:.1f}s", flush=True)
            changes = {"properties": {"deletes": deletes, "updates": edits}}
            requests.post(f"{sandbox.url}/_sandbox/advance", json=changes, timeout=600).raise_for_status()
            for number, (label, options) in enumerate(
                [
                    ("incremental sync (baseline: no deletes)", ()),
                    ("incremental sync `--reconcile`", ("--reconcile",)),
                    ("`--full-refresh`", ("--full-refresh",)),
                ]
            ):
                data = Path(scratch, f"catching-up-{number}")
                shutil.copytree(synced, data)
                result = run_sync(sandbox, data, *options)
                rows.append(
                    f"| {label} | {result['seconds']:.1f} | {result['calls']:,} | {result['landed_mb']:.1f} "
                    f"| {result['records']:,} | {result['deletes']:,} |"
                )
                print(rows[-1], flush=True)
    rows.append("")
    rows.append(
        f"{args.properties:,} properties; before catching up the sandbox hard-deleted {deletes:,} and edited {edits:,}."
    )
    print("\n".join(rows))
    if args.record:
        record(f"Reconciliation against a full refresh, {args.properties:,} properties", rows)


if __name__ == "__main__":
    main()
