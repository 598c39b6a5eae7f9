"""Sandbox throughput: pages of 100 properties per second on loopback.

    python -m benchmarks.bench_sandbox [--properties 100000] [--pages 200] [--record]

Runs the sandbox in its own process(es) with 1 and 2 workers and fetches pages of
100 properties from 4 concurrent clients, in three shapes: lean (`expand=false&media=false`,
the baseline), with inline media (`expand=false`, what the ingestion job asks for) and
fully expanded with media (the API's default, about 30 KB a property). Target: at least
50 pages/s, so the sandbox never limits the ingestion benchmark.
"""

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from benchmarks.common import SandboxProcess, record
from ingestion.sandbox import SANDBOX_API_KEY, SANDBOX_API_USER

HEADERS = {"X-Api-User": SANDBOX_API_USER, "X-Api-Key": SANDBOX_API_KEY}


SHAPES = {
    "lean": {"expand": "false", "media": "false"},
    "inline media": {"expand": "false", "media": "true"},
    "expanded + media": {"expand": "true", "media": "true"},
}


def fetch_pages(base_url: str, pages: list[int], *, shape: str, concurrency: int) -> tuple[float, int]:
    """Fetch the pages; return (seconds, bytes)."""
    params = {"limit": 100, **SHAPES[shape]}
    sessions = [requests.Session() for _ in range(concurrency)]

    def one(job: tuple[int, int]) -> int:
        slot, page = job
        response = sessions[slot % concurrency].get(
            f"{base_url}/properties", params={**params, "page": page}, headers=HEADERS, timeout=120
        )
        response.raise_for_status()
        return len(response.content)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        sizes = list(pool.map(one, enumerate(pages)))
    return time.perf_counter() - started, sum(sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--properties", type=int, default=100_000)
    parser.add_argument("--pages", type=int, default=200, help="pages fetched per measurement")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--record", action="store_true", help="append the figures to benchmarks/RESULTS.md")
    args = parser.parse_args()

    rows = ["| workers | pages | shape | pages/s | properties/s | MB/s |", "|---|---|---|---|---|---|"]
    total_pages = args.properties // 100
    for workers in (1, 2):
        with SandboxProcess(properties=args.properties, workers=workers) as sandbox:
            fetch_pages(sandbox.base_url, list(range(1, 9)), shape="expanded + media", concurrency=args.concurrency)
            for number, shape in enumerate(SHAPES):
                pages = [1 + (i * 7919 + number * 104729) % total_pages for i in range(args.pages)]
                seconds, size = fetch_pages(sandbox.base_url, pages, shape=shape, concurrency=args.concurrency)
                rate = len(pages) / seconds
                megabytes = size / seconds / 2**20
                row = f"| {workers} | {len(pages)} | {shape} | {rate:.1f} | {rate * 100:.0f} | {megabytes:.1f} |"
                rows.append(row)
                print(row, flush=True)
    print("\n".join(rows))
    if args.record:
        record(f"Sandbox throughput, {args.properties:,} properties, {args.concurrency} concurrent clients", rows)


if __name__ == "__main__":
    main()
