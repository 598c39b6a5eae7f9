"""Disk: what each layer holds (against `du`), an update refused when the disk is short, and a disk that
fills during an update: a clear error, nothing lost, and the rerun matching a clean run."""

import errno
import os
import shutil
import subprocess
import time
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from conf.cli import app
from conf.settings import Settings, load_settings
from graphql_odata.backends.snapshot import SnapshotBackend
from graphql_odata.odata.query import entity_set
from ingestion.landing import LandingWriter
from pipelines import UpdateFailed, run_update
from pipelines._engine import delta_log, publish, storage
from pipelines._engine.lakehouse import Lakehouse
from pipelines.embedded import disk_by_layer, read_events
from tests.test_engine import T0, land, photo, prop, rows

runner = CliRunner()
GOLD = ("reso_gold.property", "reso_gold.media")


def du_bytes(folder: Path) -> int:
    """What `du` counts under `folder` (each hard-linked file once), less the directories' own blocks."""
    counted = int(subprocess.run(["du", "-s", "-B1", str(folder)], capture_output=True, check=True).stdout.split()[0])
    directories = [folder, *(Path(root) / name for root, names, _ in os.walk(folder) for name in names)]
    return counted - sum(os.stat(directory).st_blocks * 512 for directory in directories)


def listings(update: int) -> list[dict]:
    return [{**prop(key, update, price=100_000 + update), "media": [photo(f"{key}{update}")]} for key in "abcdefgh"]


def test_storage_counts_each_layer_as_du_does_and_the_cli_shows_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    land(settings, "s1", listings(1))
    run_update(settings.paths)
    land(settings, "s2", listings(2)[:2])
    run_update(settings.paths)
    layers = {layer.name: layer for layer in disk_by_layer(settings.paths)}
    assert {"landing", "lakehouse/qobrix_bronze", "lakehouse/reso_gold", "snapshots", "state", "tmp"} <= set(layers)
    for layer in layers.values():
        assert layer.bytes == (du_bytes(layer.path) if layer.path.exists() else 0), layer.name
    assert layers["snapshots"].bytes > 0 and layers["landing"].files == 2

    monkeypatch.setenv("MLS2_DATA_DIR", str(settings.paths.root))
    shown = runner.invoke(app, ["pipeline", "storage"])
    assert shown.exit_code == 0, shown.output
    output = " ".join(shown.output.split())
    assert "lakehouse/reso_gold" in output and "snapshots" in output
    assert "Free on its disk:" in output and "the next update needs about" in output and "reserve 1.0 GB" in output
    assert "Its file system clones files" in output or "Its file system cannot clone files" in output


@pytest.mark.timeout(60)
def test_storage_counts_a_symlink_and_a_fifo_by_their_own_blocks_without_opening_them(settings: Settings) -> None:
    """What a user may leave in the data directory: a symlink to a file counts as itself (not the
    file again), and a FIFO is never opened (opening one waits for a writer for ever)."""
    landing = settings.paths.landing
    landing.mkdir(parents=True)
    (landing / "page.jsonl.gz").write_bytes(os.urandom(100_000))
    (landing / "link").symlink_to(landing / "page.jsonl.gz")
    os.mkfifo(landing / "fifo")
    [layer] = [layer for layer in disk_by_layer(settings.paths) if layer.name == "landing"]
    assert layer.bytes == du_bytes(landing) and layer.files == 3


def test_an_update_without_room_does_not_start_and_says_where_and_how_much(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLS2_DATA_DIR", str(settings.paths.root))
    monkeypatch.setenv("MLS2_INTEGRITY_AFTER_UPDATE", "false")
    land(settings, "s1", listings(1))
    assert runner.invoke(app, ["pipeline", "run"]).exit_code == 0
    pointer = settings.paths.snapshot_pointer.read_bytes()
    versions = {name: Lakehouse(settings.paths.lakehouse).version(name) for name in GOLD}
    land(settings, "s2", listings(2))
    monkeypatch.setenv("MLS2_MIN_FREE_MB", str(2**30))
    refused = runner.invoke(app, ["pipeline", "run"])
    assert refused.exit_code == 1
    message = " ".join(refused.output.split())
    assert f"failed in checking free space: not enough disk for an update in {settings.paths.root}" in message
    assert "needed (lakehouse" in message and "reserve 1,024.0 TB" in message and "more" in message
    assert settings.paths.snapshot_pointer.read_bytes() == pointer
    assert {name: Lakehouse(settings.paths.lakehouse).version(name) for name in GOLD} == versions
    monkeypatch.delenv("MLS2_MIN_FREE_MB")
    assert runner.invoke(app, ["pipeline", "run"]).exit_code == 0
    assert {row["ListPrice"] for row in rows(settings, "reso_gold.property")} == {100_002}


def test_an_update_estimates_the_pages_landed_since_its_table_last_committed(settings: Settings) -> None:
    """Folders last changed before the commit are not looked into; a page landed since in an old folder counts."""
    paths = settings.paths
    log = paths.lakehouse / "qobrix_bronze" / "properties" / "_delta_log"
    log.mkdir(parents=True)
    (log / "00000000000000000000.json").write_text("{}")
    day = paths.landing / "properties" / "2026-01-01"
    old, new = day / "s1", day / "s2"
    old.mkdir(parents=True)
    (old / "page-000001.jsonl.gz").write_bytes(b"x" * 1_000)
    # Behind the clock: files get their times from a coarser clock, a little behind `time.time()`.
    committed = time.time() - 10
    os.utime(log / "00000000000000000000.json", (committed, committed))
    for path in [old / "page-000001.jsonl.gz", old, day, day.parent]:
        os.utime(path, (committed - 60, committed - 60))
    tables = {"qobrix_bronze.properties": "properties"}

    def landed() -> int:
        needed = storage.space_needed(paths, tables, full_refresh=set(), reserve_bytes=0)
        return needed["lakehouse"] // storage.LAKEHOUSE_BYTES_PER_LANDING_BYTE

    assert landed() == 0
    new.mkdir()
    (new / "page-000001.jsonl").write_bytes(b"x" * 5_000)
    assert landed() == 500
    (old / "page-000002.jsonl.gz").write_bytes(b"x" * 70)
    assert landed() == 570
    # A sync resumed into its folder after the commit: the folders above it did not change.
    for path in [new, new / "page-000001.jsonl", day, day.parent]:
        os.utime(path, (committed - 60, committed - 60))
    (old / "page-000003.jsonl.gz").write_bytes(b"x" * 4)
    assert landed() == 74
    # The files of a folder last changed before the commit are not looked at, whatever their times.
    os.utime(old, (committed - 60, committed - 60))
    assert landed() == 0


def disk_full(*_: object, **__: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def fill_disk_in(phase: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the disk fill during `phase` of the next update: after a table's new files are written, as a
    merge is committed, or as the snapshot's documents are written."""
    if phase == "writing table files":
        write_files = Lakehouse.write_files

        def write_then_fill(self: Lakehouse, *args: object, **kwargs: object) -> object:
            write_files(self, *args, **kwargs)
            disk_full()

        monkeypatch.setattr(Lakehouse, "write_files", write_then_fill)
    elif phase == "committing":
        monkeypatch.setattr(delta_log, "commit", disk_full)
    else:
        append_documents = publish.append_documents

        def append_then_fill(con: object, table: str, document: str, documents: Path, where: str) -> int:
            with open(documents, "ab") as file:
                file.write(b"part of a document")
            disk_full()
            return append_documents(con, table, document, documents, where)

        monkeypatch.setattr(publish, "append_documents", append_then_fill)


def served_documents(settings: Settings) -> dict[str, dict | None]:
    """Each served property's document, by key, through the API's own reader."""
    lookup = SnapshotBackend(settings.paths.snapshot_pointer).documents_by_key(entity_set("Property"))
    assert lookup is not None
    documents = {key: lookup(f"QOBRIX_{key}") for key in "abcdefgh"}
    return {key: None if document is None else orjson.loads(document) for key, document in documents.items()}


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["writing table files", "committing", "publishing"])
def test_a_disk_that_fills_during_an_update_loses_nothing_and_the_rerun_matches_a_clean_run(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, phase: str
) -> None:
    land(settings, "s1", listings(1))
    run_update(settings.paths)
    pointer = settings.paths.snapshot_pointer.read_bytes()
    before = served_documents(settings)
    land(settings, "s2", listings(2)[:1])  # one of eight: merged on read
    with monkeypatch.context() as patched:
        fill_disk_in(phase, patched)
        with pytest.raises(UpdateFailed, match="No space left on device"):
            run_update(settings.paths)
    assert settings.paths.snapshot_pointer.read_bytes() == pointer, "nothing published"
    assert served_documents(settings) == before, "the served snapshot reads as it did"
    run_update(settings.paths)

    clean = load_settings(mls2_data_dir=tmp_path / "clean")
    shutil.copytree(settings.paths.landing, clean.paths.landing)
    run_update(clean.paths)
    for name in GOLD:
        assert rows(settings, name) == rows(clean, name), name
    assert served_documents(settings) == served_documents(clean)


def finish_sync(settings: Settings, sync_id: str) -> None:
    """What a sync lands once every page has landed: its manifest."""
    LandingWriter(str(settings.paths.landing), sync_id, started=T0).write_manifest({"sync_id": sync_id})


def test_landing_pages_bronze_holds_are_retired_after_their_days_and_a_full_refresh_keeps_bronze(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retired: a finished sync's page bronze holds, older than the retention. Kept: a page bronze does
    not hold yet, a page of a sync that has not finished (a resumed sync would number a page again), a
    recent page."""
    monkeypatch.setenv("MLS2_DATA_DIR", str(settings.paths.root))
    monkeypatch.setenv("MLS2_INTEGRITY_AFTER_UPDATE", "false")
    land(settings, "s1", listings(1))
    finish_sync(settings, "s1")
    land(settings, "s3", [prop("j", 2)])
    land(settings, "s4", [prop("k", 2)])
    finish_sync(settings, "s4")
    assert runner.invoke(app, ["pipeline", "run"]).exit_code == 0
    land(settings, "s2", [prop("i", 2)])
    finish_sync(settings, "s2")
    pages = {path.parent.name: path for path in settings.paths.landing.glob("properties/*/*/page-*.jsonl.gz")}
    ten_days_ago = time.time() - 10 * 86400
    for sync_id in ("s1", "s2", "s3"):
        os.utime(pages[sync_id], (ten_days_ago, ten_days_ago))
    monkeypatch.setenv("MLS2_LANDING_RETENTION_DAYS", "7")
    vacuumed = runner.invoke(app, ["pipeline", "vacuum"])
    assert vacuumed.exit_code == 0, vacuumed.output
    assert "Retired 1 landing pages older than 7 days whose lines bronze holds" in " ".join(vacuumed.output.split())
    assert {sync_id: page.exists() for sync_id, page in pages.items()} == {
        "s1": False,
        "s2": True,
        "s3": True,
        "s4": True,
    }

    refreshed = runner.invoke(app, ["pipeline", "run", "--full-refresh"])
    assert refreshed.exit_code == 0, refreshed.output
    assert {row["ListingKey"] for row in rows(settings, "reso_gold.property")} == {
        f"QOBRIX_{key}" for key in "abcdefghijk"
    }, "bronze kept the retired page's lines through the full refresh"
    [created] = [
        orjson.loads(event["details"])["create_update"]
        for event in read_events(settings.paths.lakehouse, event_type="create_update", limit=1)
    ]
    assert "qobrix_bronze.properties" in created["not_reset"]
    assert "qobrix_silver.property" in created["full_refresh"]
