"""The landing's pages listed by run folder, kept between updates by the folders' modification times
(`pipelines/_engine/landing_reader.py`, `LandingListing`)."""

import os
import shutil
import time
from pathlib import Path

import duckdb
import orjson

from conf.settings import Settings
from pipelines import run_update
from pipelines._engine.context import LANDING_LISTING
from pipelines._engine.lakehouse import Lakehouse, register_delta
from pipelines._engine.landing_reader import LandingListing, landing_files

LONG_AGO = time.time() - 3600


def page(landing: Path, relative: str) -> None:
    path = landing / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"{}\n")


def settle(folder: Path) -> None:
    """Give a folder a modification time past the settling delay."""
    os.utime(folder, (LONG_AGO, LONG_AGO))


def landing_tree(landing: Path) -> None:
    """Two days of runs with pages, and what a listing skips: hidden and underscored names, other
    suffixes, files outside a run folder."""
    for relative in (
        "properties/2026-01-01/run-a/0001.jsonl.gz",
        "properties/2026-01-01/run-a/0002.jsonl",
        "properties/2026-01-01/run-a/.0003.jsonl.gz",
        "properties/2026-01-01/run-a/_0004.jsonl.gz",
        "properties/2026-01-01/run-a/notes.txt",
        "properties/2026-01-01/run-b/0001.jsonl.gz",
        "properties/2026-01-01/.hidden-run/0001.jsonl.gz",
        "properties/2026-01-01/_partial-run/0001.jsonl.gz",
        "properties/2026-01-01/stray.jsonl.gz",
        "properties/2026-01-02/run-c/0001.jsonl.gz",
        "properties/2026-01-02/run-c/deeper/0001.jsonl.gz",
        "contacts/2026-01-01/run-a/0001.jsonl.gz",
    ):
        page(landing, relative)


def test_a_listing_lists_what_landing_files_lists_first_and_from_what_it_kept(tmp_path: Path) -> None:
    landing, kept = tmp_path / "landing", tmp_path / "state" / "listing.json"
    landing_tree(landing)
    expected = landing_files(landing, "properties")
    assert expected == [
        "properties/2026-01-01/run-a/0001.jsonl.gz",
        "properties/2026-01-01/run-a/0002.jsonl",
        "properties/2026-01-01/run-b/0001.jsonl.gz",
        "properties/2026-01-02/run-c/0001.jsonl.gz",
    ]
    for run in landing.glob("*/*/*"):
        settle(run)
    listing = LandingListing(landing, kept)
    assert listing.pages("properties") == expected
    listing.save()
    assert LandingListing(landing, kept).pages("properties") == expected
    assert LandingListing(landing, kept).pages("contacts") == landing_files(landing, "contacts")
    assert LandingListing(landing, kept).pages("nothing-landed") == []


def test_a_settled_folder_is_not_listed_again_until_its_time_changes(tmp_path: Path) -> None:
    landing, kept = tmp_path / "landing", tmp_path / "listing.json"
    landing_tree(landing)
    run = landing / "properties/2026-01-01/run-b"
    settle(run)
    listing = LandingListing(landing, kept)
    listing.pages("properties")
    listing.save()
    # A page whose folder kept its time is not seen: the time is what says a folder changed.
    page(landing, "properties/2026-01-01/run-b/0002.jsonl.gz")
    settle(run)
    assert "properties/2026-01-01/run-b/0002.jsonl.gz" not in LandingListing(landing, kept).pages("properties")
    # Landing a page changes its folder's time.
    page(landing, "properties/2026-01-01/run-b/0003.jsonl.gz")
    listed = LandingListing(landing, kept).pages("properties")
    assert {"properties/2026-01-01/run-b/0002.jsonl.gz", "properties/2026-01-01/run-b/0003.jsonl.gz"} <= set(listed)
    assert listed == landing_files(landing, "properties")


def test_a_folder_changed_within_the_settling_delay_is_not_kept(tmp_path: Path) -> None:
    landing, kept = tmp_path / "landing", tmp_path / "listing.json"
    landing_tree(landing)
    settle(landing / "properties/2026-01-01/run-a")
    listing = LandingListing(landing, kept)
    listing.pages("properties")
    listing.save()
    folders = orjson.loads(kept.read_bytes())["folders"]
    assert list(folders) == ["properties/2026-01-01/run-a"]
    assert sorted(folders["properties/2026-01-01/run-a"][1]) == ["0001.jsonl.gz", "0002.jsonl"]


def test_a_removed_folder_is_forgotten_and_a_damaged_file_lists_everything(tmp_path: Path) -> None:
    landing, kept = tmp_path / "landing", tmp_path / "listing.json"
    landing_tree(landing)
    for run in landing.glob("*/*/*"):
        settle(run)
    listing = LandingListing(landing, kept)
    listing.pages("properties")
    listing.save()
    shutil.rmtree(landing / "properties/2026-01-02")
    listing = LandingListing(landing, kept)
    assert listing.pages("properties") == landing_files(landing, "properties")
    listing.save()
    assert not any(folder.startswith("properties/2026-01-02") for folder in orjson.loads(kept.read_bytes())["folders"])
    for damaged in (b"{not json", b'{"format": 0, "folders": {}}', b'{"format": 1, "folders": {"x/y/z": [1]}}'):
        kept.write_bytes(damaged)
        assert LandingListing(landing, kept).pages("properties") == landing_files(landing, "properties")


def test_an_update_reads_a_page_landed_into_a_folder_it_kept(landed: Settings) -> None:
    """The update keeps the settled folders; a page landed later into one of them is read."""
    for run in landed.paths.landing.glob("*/*/*"):
        settle(run)
    run_update(landed.paths)
    kept = orjson.loads((landed.paths.state / LANDING_LISTING).read_bytes())["folders"]
    first = next(landed.paths.landing.glob("properties/*/*/*.jsonl.gz"))
    run = first.parent
    assert str(run.relative_to(landed.paths.landing)) in kept
    shutil.copy(first, run / f"9999-{first.name}")
    run_update(landed.paths)
    con = duckdb.connect()
    register_delta(con, "bronze", Lakehouse(landed.paths.lakehouse).table("qobrix_bronze.properties"))
    read = {row[0] for row in con.sql("SELECT DISTINCT source_file FROM bronze").fetchall()}
    assert str((run / f"9999-{first.name}").relative_to(landed.paths.landing)) in read
