"""The landing zone: one JSON Lines file per page, atomically written, in the documented layout."""

from datetime import UTC, datetime
from pathlib import Path

import orjson

from ingestion.landing import LandingWriter, new_sync_id


def test_sync_ids_sort_by_start_time() -> None:
    early = new_sync_id(datetime(2026, 1, 1, 10, 0, tzinfo=UTC))
    late = new_sync_id(datetime(2026, 1, 1, 10, 1, tzinfo=UTC))
    assert early.startswith("20260101T100000Z-") and early < late


def test_page_layout_and_line_format(tmp_path: Path) -> None:
    writer = LandingWriter(tmp_path, "20260101T100000Z-abc123", started=datetime(2026, 1, 1, tzinfo=UTC))
    path = writer.write_page("properties", 2, [{"id": "a", "name": "x"}, {"id": "b"}])
    assert path == tmp_path / "properties" / "2026-01-01" / "20260101T100000Z-abc123" / "page-000002.jsonl"
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [line["record"] for line in lines] == [{"id": "a", "name": "x"}, {"id": "b"}]
    assert {line["entity"] for line in lines} == {"properties"}
    assert {line["operation"] for line in lines} == {"upsert"}
    assert {line["sync_id"] for line in lines} == {"20260101T100000Z-abc123"}
    assert all(datetime.fromisoformat(line["fetched_at"]).tzinfo is not None for line in lines)


def test_rewriting_a_page_replaces_it_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    writer = LandingWriter(tmp_path, "s1")
    writer.write_page("properties", 1, [{"id": "a"}])
    path = writer.write_page("properties", 1, [{"id": "b"}], operation="delete")
    assert [orjson.loads(line)["record"]["id"] for line in path.read_bytes().splitlines()] == ["b"]
    assert [p.name for p in path.parent.iterdir()] == ["page-000001.jsonl"]


def test_manifest_is_outside_entity_folders(tmp_path: Path) -> None:
    path = LandingWriter(tmp_path, "s1").write_manifest({"sync_id": "s1", "status": "succeeded"})
    assert path == tmp_path / "_manifests" / "s1.json"
    assert orjson.loads(path.read_bytes())["status"] == "succeeded"
