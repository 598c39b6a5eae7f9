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
    for number in range(1, 13):
        time.sleep(0.002)  # distinct start times
        state.begin_sync(f"s{number}", "incremental", ["properties"], None)
        state.finish_sync(f"s{number}", "", advance_watermarks=False, full_refresh=False)
    assert [record.sync_id for record in state.recent_syncs(2)] == ["s12", "s11"]
    assert [record.sync_id for record in state.recent_syncs()] == [f"s{n}" for n in range(12, 2, -1)]


def test_times_are_recorded_in_utc(state: SyncState) -> None:
    state.begin_sync("s1", "full", ["properties"], None)
    state.fail_sync("s1", "boom")
    [failed] = state.recent_syncs()
    assert stamp(failed.started_at).utcoffset().total_seconds() == 0
    assert stamp(failed.finished_at).utcoffset().total_seconds() == 0


def test_an_entitys_progress_adds_up_its_pages_and_keeps_the_newest_stamps(state: SyncState) -> None:
    state.begin_sync("s1", "full", ["properties"], None)
    state.start_entity("s1", "properties")
    assert state.entity_progress("s1", "properties") == {
        "status": "running", "pages": 0, "records": 0, "deletes": 0, "warnings": 0,
        "max_modified": None, "max_created": None,
    }  # fmt: skip
    state.record_page("s1", "properties", ids=["a"], live=True)
    state.record_page(
        "s1", "properties", ids=["b", "c"], live=True, records=2, deletes=1, warnings=3,
        max_modified="2026-01-02T00:00:00", max_created="2026-01-01T00:00:00",
    )  # fmt: skip
    state.record_page(
        "s1", "properties", ids=["d"], live=True, pages=2, records=1,
        max_modified="2026-01-01T00:00:00", max_created="2026-01-03T00:00:00",
    )  # fmt: skip
    state.finish_entity("s1", "properties")
    assert state.entity_progress("s1", "properties") == {
        "status": "done", "pages": 4, "records": 3, "deletes": 1, "warnings": 3,
        "max_modified": "2026-01-02T00:00:00", "max_created": "2026-01-03T00:00:00",
    }  # fmt: skip
    assert state.entity_progress("s1", "agents") is None


def test_a_full_refresh_is_remembered_by_later_incremental_syncs(state: SyncState) -> None:
    assert state.watermark("properties").entity == "properties"
    for sync_id, full in (("s1", True), ("s2", False)):
        state.begin_sync(sync_id, "full" if full else "incremental", ["properties"], None)
        state.start_entity(sync_id, "properties")
        state.record_page(sync_id, "properties", ids=["a"], live=True, max_modified=f"2026-01-0{sync_id[1]}")
        state.finish_sync(sync_id, "", advance_watermarks=True, full_refresh=full)
    mark = state.watermark("properties")
    assert (mark.entity, mark.modified, mark.last_sync_id, mark.last_full_refresh) == (
        "properties", "2026-01-02", "s2", "s1"
    )  # fmt: skip


def test_windows_are_numbered_from_the_first_and_their_cursors_move_only_when_named(state: SyncState) -> None:
    state.begin_sync("s1", "full", ["properties"], None)
    state.start_entity("s1", "properties")
    state.plan_windows("s1", "properties", [(None, "m"), ("m", None)])
    state.plan_windows("s1", "properties", [("x", None)], first=5)
    assert state.windows("s1", "properties") == [
        (0, None, "m", None, False), (1, "m", None, "m", False), (5, "x", None, "x", False)
    ]  # fmt: skip
    state.record_page("s1", "properties", ids=["a"], live=True, window=1, cursor="p")
    state.record_page("s1", "properties", ids=["b"], live=True, window=1)
    state.record_page("s1", "properties", ids=["c"], live=True, cursor="q")
    state.move_cursor("s1", "properties", 5, "z", done=True)
    state.move_cursor("s1", "properties", 0, "k")
    assert state.windows("s1", "properties") == [
        (0, None, "m", "k", False), (1, "m", None, "p", False), (5, "x", None, "z", True)
    ]  # fmt: skip


def test_vanished_ids_come_in_batches_each_once_in_order(state: SyncState) -> None:
    ids = [f"id{n:05d}" for n in range(2_503)]
    state.record_page("s1", "properties", ids=ids, live=True)
    state.record_page("s2", "properties", ids=ids[:3], live=True)
    state.record_page("s2", "properties", ids=["gone"], live=False)
    batches = list(state.vanished("properties", "s2"))
    assert [len(batch) for batch in batches] == [1000, 1000, 500]
    assert [record_id for batch in batches for record_id in batch] == ids[3:]
    assert [len(batch) for batch in state.vanished("properties", "s2", batch=7)][:2] == [7, 7]
    assert sum(map(len, state.vanished("properties", "s2", batch=7))) == 2_500
