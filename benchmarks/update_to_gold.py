"""One pipeline update to gold with nothing published for serving, for `bench_pipeline --no-publish`:

    MLS2_DATA_DIR=... python -m benchmarks.update_to_gold [--full-refresh]

At 1,000,000 listings the serving snapshot does not fit this machine's disk beside the landing zone
and the lakehouse (the storage issue's measurements); the engine's cost to gold is measured alone.
"""

import argparse

from conf.settings import Settings, load_settings
from pipelines._engine.runner import run_update
from pipelines.embedded import product_graph


def update_to_gold(settings: Settings, *, full_refresh: bool = False) -> None:
    """One update of the product's graph to gold, as `mls2 pipeline run` runs it, without the publish."""
    result = run_update(
        settings.paths,
        product_graph(settings.paths),
        {},
        full_refresh=full_refresh,
        memory_limit=settings.mls2_engine_memory_limit,
        key_index_cells=settings.mls2_engine_key_index_cells,
    )
    if result.state != "COMPLETED":
        raise SystemExit(f"update {result.update_id} ended {result.state}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full-refresh", action="store_true")
    args = parser.parse_args()
    update_to_gold(load_settings(), full_refresh=args.full_refresh)


if __name__ == "__main__":
    main()
