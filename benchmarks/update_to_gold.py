"""One pipeline update to gold with nothing published for serving, for `bench_pipeline --no-publish`:

    MLS2_DATA_DIR=... python -m benchmarks.update_to_gold [--full-refresh]

At 1,000,000 listings the serving snapshot does not fit this machine's disk beside the landing zone
and the lakehouse (the storage issue's measurements); the engine's cost to gold is measured alone.
"""

import argparse
import os
from pathlib import Path

from conf.settings import DataPaths
from pipelines._engine.runner import run_update
from pipelines.graph import load_graph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full-refresh", action="store_true")
    args = parser.parse_args()
    result = run_update(DataPaths(Path(os.environ["MLS2_DATA_DIR"])), load_graph(), {}, full_refresh=args.full_refresh)
    if result.state != "COMPLETED":
        raise SystemExit(f"update {result.update_id} ended {result.state}")


if __name__ == "__main__":
    main()
