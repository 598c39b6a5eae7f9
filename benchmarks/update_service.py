"""Updates in one long-lived process, as the pipeline UI's server keeps one, for
`bench_pipeline --long-lived`:

    MLS2_DATA_DIR=... python -m benchmarks.update_service [--no-publish]

Runs one update for each line it reads on stdin (published for serving as `mls2 pipeline run`
publishes, or to gold only) and answers a JSON line: the update's wall seconds in this process and
the process's peak memory so far. Starting Python, importing and building the graph are paid once,
before the first line, as the server pays them once. The update alone: what the server runs after
it (the integrity suite, daily maintenance) has its own benchmarks.
"""

import argparse
import resource
import sys
import time

import orjson

from benchmarks.update_to_gold import update_to_gold
from conf.settings import load_settings
from pipelines.embedded import product_graph, run_update


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-publish", action="store_true", help="updates to gold only")
    args = parser.parse_args()
    settings = load_settings()
    product_graph(settings.paths)
    for _ in sys.stdin:
        started = time.perf_counter()
        if args.no_publish:
            update_to_gold(settings)
        else:
            run_update(
                settings.paths,
                memory_limit=settings.mls2_engine_memory_limit,
                key_index_cells=settings.mls2_engine_key_index_cells,
                reserve_bytes=settings.mls2_min_free_mb * 2**20,
            )
        seconds = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(orjson.dumps({"seconds": seconds, "peak_mb": peak_mb}).decode(), flush=True)


if __name__ == "__main__":
    main()
