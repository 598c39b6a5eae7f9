"""An update in a process of its own (`mls2 pipeline run --here`, no server): what it pays to start.

pyarrow imports pandas the first time it converts Python values (the engine builds its Arrow values
without that, `pipelines/_engine/arrow.py`) and loads its compute functions at the first cast or
`take`; sqlglot with its dialects is imported to parse SQL (kept translations,
`pipelines/_engine/compiled.py`, leave nothing to parse)."""

import gzip
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import orjson

from conf.entities import entities
from conf.settings import Settings
from ingestion.landing import LandingWriter
from pipelines import run_update
from pipelines._engine import delta_log
from pipelines._engine.events import read_events
from pipelines._engine.lakehouse import Lakehouse

NOT_IMPORTED = ("pandas", "sqlglot", "pyarrow.compute")


def change_listings(settings: Settings, count: int, days_later: int) -> None:
    """Land a later version (new price, `modified` `days_later` from now) of `count` listings landed."""
    page = next(settings.paths.landing.glob("properties/**/*.jsonl.gz"))
    records = [orjson.loads(line)["record"] for line in gzip.decompress(page.read_bytes()).splitlines()][:count]
    later = (datetime.now(UTC) + timedelta(days=days_later)).isoformat()
    changed = [{**record, "modified": later, "list_selling_price_amount": 1_000 + days_later} for record in records]
    LandingWriter(settings.landing_root, f"changed-{days_later}", started=datetime.now(UTC)).write_page(
        entities()["properties"], changed
    )


def mls2_run_here(settings: Settings, **setting: str) -> str:
    """`mls2 pipeline run --here` in a process of its own, with the settings given; its standard
    error, which ends with the modules of `NOT_IMPORTED` it imported."""
    code = (
        f"import atexit, sys; atexit.register(lambda: print('imported:', "
        f"[name for name in {NOT_IMPORTED!r} if name in sys.modules], file=sys.stderr)); "
        "sys.argv = ['mls2', 'pipeline', 'run', '--here']; from conf.cli import app; app()"
    )
    environment = {
        **os.environ,
        "MLS2_DATA_DIR": str(settings.paths.root),
        "MLS2_INTEGRITY_AFTER_UPDATE": "false",
        **setting,
    }
    done = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_an_update_of_changed_listings_in_a_process_of_its_own_imports_no_pandas_sqlglot_or_arrow_compute(
    landed: Settings,
) -> None:
    """Past a checkpoint too: the engine reads a checkpoint's actions itself. Its bodies, expectations
    and CDC conditions were translated by the updates before it, and kept."""
    mls2_run_here(landed)
    for day in range(1, delta_log.CHECKPOINT_INTERVAL + 1):
        change_listings(landed, 2, day)
        run_update(landed.paths)
    property_log = Lakehouse(landed.paths.lakehouse).path("qobrix_silver.property") / "_delta_log"
    assert list(property_log.glob("*.checkpoint.parquet"))
    change_listings(landed, 2, delta_log.CHECKPOINT_INTERVAL + 1)
    errors = mls2_run_here(landed)
    assert errors.rstrip().endswith("imported: []"), errors
    assert "property patched by key" in " ".join(errors.split()), errors
    # It was a merge on read of the listings (deletion vectors, history rebuilt) and a patched snapshot.
    written = [
        orjson.loads(event["details"])["planning_information"].get("write", {}).get("mode")
        for event in read_events(landed.paths.lakehouse, event_type="planning_information")
        if event["dataset"] in ("qobrix_silver.property", "reso_gold.property")
    ]
    assert written == ["merge-on-read", "merge-on-read"], written


def test_an_update_through_key_indexes_in_a_process_of_its_own_imports_no_pandas_or_arrow_compute(
    landed: Settings,
) -> None:
    """Large tables find the rows a merge replaces through their key indexes: the update builds them
    (every data file's keys, timestamps among them), then looks the changed keys up. An update
    before it translated what a merge translates."""
    mls2_run_here(landed)
    change_listings(landed, 2, 1)
    run_update(landed.paths)
    change_listings(landed, 2, 2)
    errors = mls2_run_here(landed, MLS2_ENGINE_KEY_INDEX_CELLS="0")
    assert errors.rstrip().endswith("imported: []"), errors
    located = {
        event["dataset"]: orjson.loads(event["details"])["planning_information"].get("write", {}).get("located_by")
        for event in read_events(landed.paths.lakehouse, event_type="planning_information")
        if event["dataset"] in ("qobrix_silver.property", "reso_gold.property")
    }
    assert located == {"qobrix_silver.property": "key index", "reso_gold.property": "key index"}, located
