"""The sync state's record of each sync: what was asked, how it ended, and which sync a new one resumes."""

import time
from datetime import datetime
from pathlib import Path

import pytest

from ingestion.state import SyncState


@pytest.fixture
def state(tmp_path: Path) -> SyncState:
    opened = SyncState(tmp_path / "sync_state.sqlite")
    yield opened
    opened.close()


def stamp(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value)


def test_a_sync_is_recorded_as_asked_and_as_it_ended(state: SyncState) -> None:
    state.begin_sync("s1", "incremental", ["properties", "agents"], 25)
    [running] = state.recent_syncs()
    assert (running.sync_id, running.mode, running.entities, running.max_properties, running.status) == (
        "s1", "incremental", ("properties", "agents"), 25, "running"
    )  # fmt: skip
    assert running.finished_at is None and running.error is None and running.summary is None
    state.finish_sync("s1", "3 pages", advance_watermarks=False, full_refresh=False)
    [done] = state.recent_syncs()
    assert (done.status, done.summary, done.error) == ("succeeded", "3 pages", None)
    assert stamp(done.finished_at) >= stamp(done.started_at)
    assert state.unfinished_sync() is None


def test_a_failed_sync_keeps_its_error_until_resumed(state: SyncState) -> None:
    state.begin_sync("s1", "full", ["properties"], None)
    state.fail_sync("s1", "HTTP 503 on page 4")
    failed = state.unfinished_sync()
    assert (failed.sync_id, failed.status, failed.error) == ("s1", "failed", "HTTP 503 on page 4")
    assert failed.finished_at is not None
    state.resume_sync("s1")
    resumed = state.unfinished_sync()
    assert (resumed.sync_id, resumed.status, resumed.error) == ("s1", "running", None)


def test_an_abandoned_sync_is_no_longer_resumed(state: SyncState) -> None:
    state.begin_sync("s1", "full", ["properties"], None)
    state.fail_sync("s1", "cut")
    state.abandon_sync("s1")
    assert state.unfinished_sync() is None
    [abandoned] = state.recent_syncs()
    assert abandoned.status == "abandoned" and abandoned.finished_at is not None


def test_recent_syncs_come_newest_first_up_to_the_limit(state: SyncState) -> None:
    for sync_id in ("s1", "s2", "s3"):
        time.sleep(0.002)  # distinct start times
        state.begin_sync(sync_id, "incremental", ["properties"], None)
        state.finish_sync(sync_id, "", advance_watermarks=False, full_refresh=False)
    assert [record.sync_id for record in state.recent_syncs(2)] == ["s3", "s2"]
