"""The sync state saved beside the landing zone (MLS2_SYNC_STATE_URL): a run on a new disk, as a
Databricks job cluster's is each run, goes on from the last sync's watermarks instead of starting over."""

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conf.cli import app
from ingestion.saved_state import SavedStateError, kept_at, restore_state, save_state
from ingestion.state import SyncState
from tests.test_cli import configure_qobrix

runner = CliRunner()


def mode(output: str, entity: str) -> str:
    """The mode the sync summary reports for `entity`: full or incremental."""
    [row] = [line for line in output.splitlines() if line.startswith(f"│ {entity} ")]
    return row.split("│")[2].strip()


def watermarks(path: Path) -> dict[str, str | None]:
    state = SyncState(path)
    try:
        return {mark.entity: mark.modified for mark in state.watermarks()}
    finally:
        state.close()


def test_a_sync_on_a_new_disk_goes_on_from_the_saved_watermarks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sandbox
) -> None:
    saved = tmp_path / "volume" / "_state" / "sync_state.sqlite"
    configure_qobrix(monkeypatch, sandbox.base_url, tmp_path)
    monkeypatch.setenv("MLS2_SYNC_STATE_URL", str(saved))
    first = runner.invoke(app, ["sync", "--entities", "agents"])
    assert first.exit_code == 0, first.output
    assert watermarks(saved)["agents"], "the sync saved its watermarks"
    monkeypatch.setenv("MLS2_DATA_DIR", str(tmp_path / "new-disk"))
    status = runner.invoke(app, ["sync", "status"])
    assert status.exit_code == 0 and "agents" in status.output and "No sync has run yet" not in status.output
    second = runner.invoke(app, ["sync", "--entities", "agents"])
    assert second.exit_code == 0, second.output
    assert mode(first.output, "agents") == "full"
    assert mode(second.output, "agents") == "incremental", "the second run went on from the saved watermarks"
    assert watermarks(tmp_path / "new-disk" / "state" / "sync_state.sqlite") == watermarks(saved)


def test_without_the_setting_a_new_disk_starts_over(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sandbox) -> None:
    configure_qobrix(monkeypatch, sandbox.base_url, tmp_path)
    assert runner.invoke(app, ["sync", "--entities", "agents"]).exit_code == 0
    monkeypatch.setenv("MLS2_DATA_DIR", str(tmp_path / "new-disk"))
    second = runner.invoke(app, ["sync", "--entities", "agents"])
    assert mode(second.output, "agents") == "full"


def test_a_state_already_on_this_disk_is_not_replaced(tmp_path: Path) -> None:
    local, saved = tmp_path / "local.sqlite", tmp_path / "saved.sqlite"
    SyncState(saved).close()
    local.write_bytes(b"kept")
    assert restore_state(str(saved), local) is False and local.read_bytes() == b"kept"
    assert restore_state(str(tmp_path / "never-saved.sqlite"), tmp_path / "other.sqlite") is False


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"not a database at all, just text" * 200, "is not a sync state"), (None, "holds no watermarks table")],
)
def test_a_saved_file_that_is_not_a_sync_state_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sandbox, content: bytes | None, message: str
) -> None:
    saved = tmp_path / "saved.sqlite"
    if content is None:
        sqlite3.connect(saved).execute("CREATE TABLE other (x)").connection.commit()
    else:
        saved.write_bytes(content)
    configure_qobrix(monkeypatch, sandbox.base_url, tmp_path)
    monkeypatch.setenv("MLS2_SYNC_STATE_URL", str(saved))
    result = runner.invoke(app, ["sync", "--entities", "agents"])
    said = "".join(result.output.split())  # the console wraps long paths anywhere
    assert result.exit_code == 2 and f"MLS2_SYNC_STATE_URL={saved}" in said and message.replace(" ", "") in said
    assert not (tmp_path / "cli-data" / "landing").exists(), "nothing was fetched"
    assert not (tmp_path / "cli-data" / "state" / "sync_state.sqlite").exists()


def test_a_failed_sync_still_saves_its_cursors(tmp_path: Path) -> None:
    local, saved = tmp_path / "state.sqlite", tmp_path / "saved" / "state.sqlite"
    with pytest.raises(RuntimeError, match="Qobrix went away"), kept_at(str(saved), local):
        state = SyncState(local)
        state.begin_sync("sync-1", "incremental", ["agents"], None)
        state.fail_sync("sync-1", "Qobrix went away")
        state.close()
        raise RuntimeError("Qobrix went away")
    restored = SyncState(saved)
    try:
        assert [(s.sync_id, s.status) for s in restored.recent_syncs()] == [("sync-1", "failed")]
    finally:
        restored.close()
    assert not list(tmp_path.glob("*.saving*")) and not list(tmp_path.glob("*.restoring*"))


def test_a_sync_that_failed_before_making_a_state_saves_nothing(tmp_path: Path) -> None:
    """An empty database saved in its place would be refused by every later restore."""
    saved = tmp_path / "saved.sqlite"
    with pytest.raises(RuntimeError), kept_at(str(saved), tmp_path / "state.sqlite"):
        raise RuntimeError("Qobrix refused the key")
    assert not saved.exists()


def test_a_failed_save_after_a_failed_sync_leaves_the_syncs_own_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    local = tmp_path / "state.sqlite"
    SyncState(local).close()
    with pytest.raises(RuntimeError, match="Qobrix went away"), kept_at(str(blocker / "saved.sqlite"), local):
        raise RuntimeError("Qobrix went away")


def test_a_url_whose_filesystem_is_not_installed_is_named(tmp_path: Path) -> None:
    with pytest.raises(SavedStateError, match="cannot read the saved sync state MLS2_SYNC_STATE_URL=nosuch://"):
        restore_state("nosuch://bucket/state.sqlite", tmp_path / "state.sqlite")


def test_an_unwritable_place_is_named(tmp_path: Path) -> None:
    local = tmp_path / "state.sqlite"
    SyncState(local).close()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SavedStateError, match="cannot save the sync state to MLS2_SYNC_STATE_URL="):
        save_state(local, str(blocker / "state.sqlite"))
    assert not list(tmp_path.glob("*.saving")), "the local copy made for the save is gone"
