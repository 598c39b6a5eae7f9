"""The landing's pages listed by run folder, kept between updates by the folders' modification and
change times (`pipelines/_engine/landing_listing.py`)."""

import os
import shutil
from pathlib import Path

import duckdb
import orjson
import pytest

from conf.settings import Settings
from pipelines import run_update
from pipelines._engine import landing_listing
from pipelines._engine.context import LANDING_LISTING
from pipelines._engine.lakehouse import Lakehouse, register_delta
from pipelines._engine.landing_listing import LISTING_FORMAT, LandingListing
from pipelines._engine.landing_reader import landing_files

RUN = "properties/2026-01-01/run-a"


@pytest.fixture
def settled_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Folders count as settled as soon as they are written (the delay is for coarse filesystem times)."""
    monkeypatch.setattr(landing_listing, "SETTLED_NS", 0)


def page(landing: Path, relative: str) -> None:
    path = landing / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"{}\n")


def landing_tree(landing: Path) -> None:
    """Two days of runs with pages, and what a listing skips: hidden and underscored names, other
    suffixes, files outside a run folder."""
    for relative in (
        f"{RUN}/0001.jsonl.gz",
        f"{RUN}/0002.jsonl",
        f"{RUN}/.0003.jsonl.gz",
        f"{RUN}/_0004.jsonl.gz",
        f"{RUN}/notes.txt",
        "properties/2026-01-01/run-b/0001.jsonl.gz",
        "properties/2026-01-01/.hidden-run/0001.jsonl.gz",
        "properties/2026-01-01/_partial-run/0001.jsonl.gz",
        "properties/2026-01-01/stray.jsonl.gz",
        "properties/2026-01-02/run-c/0001.jsonl.gz",
        "properties/2026-01-02/run-c/deeper/0001.jsonl.gz",
        "contacts/2026-01-01/run-a/0001.jsonl.gz",
    ):
        page(landing, relative)


def listed_folders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The folders the listing module lists from now on (a list it fills)."""
    listed: list[str] = []
    real = os.listdir

    def counting(folder: Path) -> list[str]:
        listed.append(str(folder))
        return real(folder)

    monkeypatch.setattr(landing_listing.os, "listdir", counting)
    return listed


def stamp_of(folder: Path) -> list[int]:
    status = folder.stat()
    return [status.st_mtime_ns, status.st_ctime_ns]


@pytest.mark.usefixtures("settled_at_once")
def test_a_listing_lists_what_landing_files_lists_first_and_from_what_it_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing, kept = tmp_path / "landing", tmp_path / "state" / "listing.json"
    landing_tree(landing)
    expected = landing_files(landing, "properties")
    assert expected == [
        f"{RUN}/0001.jsonl.gz",
        f"{RUN}/0002.jsonl",
        "properties/2026-01-01/run-b/0001.jsonl.gz",
        "properties/2026-01-02/run-c/0001.jsonl.gz",
    ]
    listing = LandingListing(landing, kept)
    assert listing.pages("properties") == expected
    assert listing.pages("contacts") == landing_files(landing, "contacts")
    listing.save()
    listed = listed_folders(monkeypatch)
    again = LandingListing(landing, kept)
    assert again.pages("properties") == expected
    assert again.pages("contacts") == landing_files(landing, "contacts")
    assert listed == [], "folders kept unchanged were listed again"
    assert again.pages("nothing-landed") == []


@pytest.mark.usefixtures("settled_at_once")
def test_a_page_landed_into_a_kept_folder_is_listed_even_with_its_modification_time_set_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing, kept = tmp_path / "landing", tmp_path / "listing.json"
    landing_tree(landing)
    listing = LandingListing(landing, kept)
    listing.pages("properties")
    listing.save()
    before = (landing / RUN).stat()
    page(landing, f"{RUN}/0005.jsonl.gz")
    # As a copy that keeps modification times would leave it: the change time cannot be set back.
    os.utime(landing / RUN, ns=(before.st_atime_ns, before.st_mtime_ns))
    listed = listed_folders(monkeypatch)
    pages = LandingListing(landing, kept).pages("properties")
    assert f"{RUN}/0005.jsonl.gz" in pages
    assert pages == landing_files(landing, "properties")
    assert listed == [str(landing / RUN)]


def test_a_folder_changed_within_the_settling_delay_is_listed_and_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing, kept = tmp_path / "landing", tmp_path / "listing.json"
    landing_tree(landing)
    monkeypatch.setattr(landing_listing, "SETTLED_NS", 0)
    listing = LandingListing(landing, kept)
    listing.pages("properties")
    listing.save()
    assert RUN in orjson.loads(kept.read_bytes())["folders"]
    page(landing, f"{RUN}/0005.jsonl.gz")
    monkeypatch.setattr(landing_listing, "SETTLED_NS", 3600 * 10**9)
    listing = LandingListing(landing, kept)
    assert f"{RUN}/0005.jsonl.gz" in listing.pages("properties")
    listing.save()
    assert RUN not in orjson.loads(kept.read_bytes())["folders"]


@pytest.mark.usefixtures("settled_at_once")
def test_a_removed_folder_is_forgotten(tmp_path: Path) -> None:
    landing, kept = tmp_path / "landing", tmp_path / "listing.json"
    landing_tree(landing)
    listing = LandingListing(landing, kept)
    listing.pages("properties")
    listing.save()
    shutil.rmtree(landing / "properties/2026-01-02")
    listing = LandingListing(landing, kept)
    assert listing.pages("properties") == landing_files(landing, "properties")
    listing.save()
    assert not any(folder.startswith("properties/2026-01-02") for folder in orjson.loads(kept.read_bytes())["folders"])


@pytest.mark.usefixtures("settled_at_once")
def test_a_damaged_or_foreign_file_and_a_relisting_list_every_folder(tmp_path: Path) -> None:
    """Each kept entry below names the folder with its true times and no pages: read, it would hide them."""
    landing, kept = tmp_path / "landing", tmp_path / "listing.json"
    landing_tree(landing)
    expected = landing_files(landing, "properties")
    hiding = {RUN: [*stamp_of(landing / RUN), []]}
    kept.write_bytes(orjson.dumps({"format": LISTING_FORMAT, "folders": hiding}))
    assert f"{RUN}/0001.jsonl.gz" not in LandingListing(landing, kept).pages("properties")
    assert LandingListing(landing, kept).pages("properties", relist=True) == expected
    for damaged in (
        b"{not json",
        orjson.dumps({"format": LISTING_FORMAT - 1, "folders": hiding}),
        orjson.dumps({"format": LISTING_FORMAT, "folders": {RUN: [*stamp_of(landing / RUN)]}}),
        orjson.dumps({"format": LISTING_FORMAT, "folders": {RUN: [*stamp_of(landing / RUN), "0001.jsonl.gz"]}}),
    ):
        kept.write_bytes(damaged)
        assert LandingListing(landing, kept).pages("properties") == expected


@pytest.mark.usefixtures("settled_at_once")
def test_an_update_reads_a_page_landed_into_a_folder_it_kept_and_a_full_refresh_lists_again(
    landed: Settings,
) -> None:
    paths = landed.paths
    run_update(paths)
    kept_file = paths.state / LANDING_LISTING
    first = next(paths.landing.glob("properties/*/*/*.jsonl.gz"))
    run = first.parent
    folder = str(run.relative_to(paths.landing))
    assert folder in orjson.loads(kept_file.read_bytes())["folders"]
    added = run / f"9999-{first.name}"
    shutil.copy(first, added)
    run_update(paths)

    def read_pages() -> set[str]:
        con = duckdb.connect()
        register_delta(con, "bronze", Lakehouse(paths.lakehouse).table("qobrix_bronze.properties"))
        return {row[0] for row in con.sql("SELECT DISTINCT source_file FROM bronze").fetchall()}

    assert str(added.relative_to(paths.landing)) in read_pages()
    # A kept entry hiding the folder's pages (times set back by hand, say): a full refresh reads them.
    kept = orjson.loads(kept_file.read_bytes())
    kept["folders"][folder] = [*stamp_of(run), []]
    kept_file.write_bytes(orjson.dumps(kept))
    run_update(paths, full_refresh=True)
    assert {f"{folder}/{name}" for name in os.listdir(run)} <= read_pages()
