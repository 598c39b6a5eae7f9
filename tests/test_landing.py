"""The landing zone: one gzip-compressed JSON Lines file per page, atomically written, in the documented layout."""

import gzip
from datetime import UTC, datetime
from pathlib import Path

import orjson

from conf.entities import entities
from ingestion.landing import LandingWriter, new_sync_id
from pipelines._engine.landing_reader import landing_files

STARTED = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)


def unpacked(path: str) -> bytes:
    """A landed page's JSON Lines."""
    return gzip.decompress(Path(path).read_bytes())


def test_sync_ids_sort_by_start_time() -> None:
    early = new_sync_id(datetime(2026, 1, 1, 10, 0, tzinfo=UTC))
    late = new_sync_id(datetime(2026, 1, 1, 10, 1, tzinfo=UTC))
    assert early.startswith("20260101T100000Z-") and early < late


def test_page_layout_and_line_format(tmp_path: Path) -> None:
    writer = LandingWriter(str(tmp_path), "20260101T093000Z-abc123", started=STARTED)
    first = writer.write_page(entities()["properties"], [{"id": "a", "name": "x"}, {"id": "b"}])
    second = writer.write_page(entities()["media/categories"], [{"id": "c"}], operation="delete")
    assert first == f"{tmp_path}/properties/2026-01-01/20260101T093000Z-abc123/page-000001.jsonl.gz"
    assert second == f"{tmp_path}/media-categories/2026-01-01/20260101T093000Z-abc123/page-000001.jsonl.gz"
    lines = [orjson.loads(line) for line in unpacked(first).splitlines()]
    assert [line["record"] for line in lines] == [{"id": "a", "name": "x"}, {"id": "b"}]
    assert {(line["entity"], line["operation"], line["sync_id"]) for line in lines} == {
        ("properties", "upsert", "20260101T093000Z-abc123")
    }
    assert all(datetime.fromisoformat(line["fetched_at"]).tzinfo is not None for line in lines)
    assert orjson.loads(unpacked(second))["operation"] == "delete"


def test_pages_are_numbered_on_from_what_a_stopped_sync_landed(tmp_path: Path) -> None:
    LandingWriter(str(tmp_path), "s1", started=STARTED).write_page(entities()["agents"], [{"id": "a"}])
    resumed = LandingWriter(str(tmp_path), "s1", started=STARTED)
    assert resumed.write_page(entities()["agents"], [{"id": "b"}]).endswith("page-000002.jsonl.gz")
    folder = tmp_path / "agents" / "2026-01-01" / "s1"
    assert sorted(p.name for p in folder.iterdir()) == ["page-000001.jsonl.gz", "page-000002.jsonl.gz"], "no temporary"
    # A page an earlier version landed uncompressed counts too.
    (folder / "page-000003.jsonl").write_bytes(b"")
    again = LandingWriter(str(tmp_path), "s1", started=STARTED)
    assert again.write_page(entities()["agents"], [{"id": "c"}]).endswith("page-000004.jsonl.gz")


def test_a_body_that_never_parsed_is_kept_whole(tmp_path: Path) -> None:
    writer = LandingWriter(str(tmp_path), "s1", started=STARTED)
    path = writer.write_malformed(entities()["agents"], b'{"data": [{"id": "a"}, {"id"')
    line = orjson.loads(unpacked(path))
    assert line["operation"] == "malformed" and line["raw"] == '{"data": [{"id": "a"}, {"id"'


def test_manifest_is_outside_entity_folders(tmp_path: Path) -> None:
    path = LandingWriter(str(tmp_path), "s1", started=STARTED).write_manifest({"sync_id": "s1", "status": "succeeded"})
    assert path == f"{tmp_path}/_manifests/s1.json"
    assert orjson.loads(Path(path).read_bytes())["status"] == "succeeded"


def test_the_engine_reads_every_page_of_an_entity_in_landing_order_and_no_file_being_written(tmp_path: Path) -> None:
    """Pages of either suffix, in landing order, relative to the landing root; not another entity's,
    not a file whose name or folder starts with a dot or an underscore (one being written, a manifest)."""
    pages = [
        "properties/2026-01-02/20260102T000000Z-b/page-000001.jsonl",
        "properties/2026-01-01/20260101T000000Z-a/page-000002.jsonl.gz",
        "properties/2026-01-01/20260101T000000Z-a/page-000001.jsonl.gz",
    ]
    skipped = [
        "properties/2026-01-01/20260101T000000Z-a/.page-000003.jsonl.gz.tmp",
        "properties/2026-01-01/20260101T000000Z-a/.page-000004.jsonl.gz",
        "properties/2026-01-01/_20260101T000000Z-c/page-000001.jsonl.gz",
        "properties/_2026-01-01/20260101T000000Z-d/page-000001.jsonl.gz",
        "properties/2026-01-01/20260101T000000Z-a/page-000005.json",
        "properties/2026-01-01/20260101T000000Z-a/page-000006.jsonl.part",
        "agents/2026-01-01/20260101T000000Z-a/page-000001.jsonl.gz",
    ]
    for page in pages + skipped:
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / page).write_bytes(b"")

    assert landing_files(tmp_path, "properties") == sorted(pages)
    assert landing_files(tmp_path, "contacts") == []
