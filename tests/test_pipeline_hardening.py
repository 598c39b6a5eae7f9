"""Landing lines a clumsy operator or a broken sync could leave, through the real pipeline: each is
quarantined with its reason, and the listing it names keeps its last good values in gold."""

from datetime import timedelta

import orjson
import pytest

from conf.entities import entities
from conf.settings import Settings
from ingestion.landing import LandingWriter
from pipelines import UpdateFailed, run_update
from tests.conftest import data_quality
from tests.test_engine import T0, gold_prices, land, prop, rows


def land_lines(settings: Settings, sync_id: str, lines: list[dict]) -> None:
    writer = LandingWriter(settings.landing_root, sync_id, started=T0 + timedelta(minutes=5))
    writer.write_lines(entities()["properties"], b"".join(orjson.dumps(line) + b"\n" for line in lines))


def line(record: dict, **fields: object) -> dict:
    return {"entity": "properties", "operation": "upsert", "sync_id": "s2", "fetched_at": T0.isoformat(),
            "record": record, **fields}  # fmt: skip


def quarantine(settings: Settings) -> dict[str, list[str]]:
    held = rows(settings, "mls2_system.quarantine")
    return {orjson.loads(row["record"])["id"]: list(row["broken_rules"]) for row in held}


def test_lines_of_another_entity_an_unknown_operation_or_an_unparsed_price_are_held_back(settings: Settings) -> None:
    land(settings, "s1", [prop("a", 1, price=100_000), prop("b", 1, price=200_000), prop("c", 1, price=300_000)])
    run_update(settings.paths)
    assert gold_prices(settings) == {"QOBRIX_a": 100_000, "QOBRIX_b": 200_000, "QOBRIX_c": 300_000}

    land_lines(
        settings,
        "s2",
        [
            line(prop("a", 2, price=1), entity="agents"),
            line(prop("b", 2, price=2), operation="explode"),
            line({**prop("c", 2), "list_selling_price_amount": "abc"}),
            line(prop("d", 2, price=400_000), entity="contacts"),
        ],
    )
    run_update(settings.paths)

    assert gold_prices(settings) == {"QOBRIX_a": 100_000, "QOBRIX_b": 200_000, "QOBRIX_c": 300_000}
    held = quarantine(settings)
    assert held == {
        "a": ["landed_as_this_entity"],
        "b": ["operation_known"],
        "c": ["typed_fields_parse"],
        "d": ["landed_as_this_entity"],
    }
    history = {
        (row["id"], float(row["list_selling_price_amount"] or 0))
        for row in rows(settings, "qobrix_silver.property_history")
    }
    assert history == {("a", 100_000), ("b", 200_000), ("c", 300_000)}


def test_coordinates_out_of_range_or_infinite_reach_gold_as_unknown_not_a_failed_update(settings: Settings) -> None:
    land(
        settings,
        "s1",
        [
            {**prop("a", 1), "coordinates": "inf,-inf"},
            {**prop("b", 1), "coordinates": "95.5,200.25"},
            {**prop("c", 1), "coordinates": "34.6851,33.0440"},
        ],
    )
    result = run_update(settings.paths)
    assert result.state == "COMPLETED"
    places = {row["ListingKey"]: (row["Latitude"], row["Longitude"]) for row in rows(settings, "reso_gold.property")}
    assert places["QOBRIX_a"] == places["QOBRIX_b"] == (None, None)
    assert tuple(map(float, places["QOBRIX_c"])) == (34.6851, 33.044)


def test_an_amount_beyond_the_reso_precision_is_served_as_unknown_not_a_failed_update(settings: Settings) -> None:
    land(settings, "s1", [{**prop("a", 1), "starting_bidding_amount": 10**12}, prop("b", 1, price=10**13)])
    result = run_update(settings.paths)
    assert result.state == "COMPLETED"
    served = {row["ListingKey"]: row for row in rows(settings, "reso_gold.property")}
    assert served["QOBRIX_a"]["X_StartingBid"] is None and float(served["QOBRIX_a"]["ListPrice"]) == 100_000
    assert served["QOBRIX_b"]["ListPrice"] is None


def test_a_trashed_listing_with_a_field_that_does_not_parse_is_still_deleted(settings: Settings) -> None:
    land(settings, "s1", [prop("a", 1), prop("b", 1)])
    run_update(settings.paths)
    land(
        settings,
        "s2",
        [{**prop("a", 2), "bedrooms": "many", "trashed": (T0 + timedelta(minutes=2)).isoformat()}],
        "delete",
    )
    run_update(settings.paths)
    assert set(gold_prices(settings)) == {"QOBRIX_b"}
    assert {row["id"] for row in rows(settings, "qobrix_silver.property")} == {"b"}


def photo(media_id: str, owner: str, order: int = 1) -> dict:
    return {"id": media_id, "category": {"name": "photos"}, "related_model": "Properties", "related_id": owner,
            "media_type": "upload", "display_order": order,
            "file": {"filename": f"{media_id}.jpg", "mime_type": "image/jpeg",
                     "href": f"https://media.example/{media_id}.jpg"}}  # fmt: skip


def gold_media(settings: Settings) -> dict[str, str]:
    return {row["MediaKey"]: row["ResourceRecordID"] for row in rows(settings, "reso_gold.media")}


def test_a_listing_carrying_another_listings_media_loses_them_and_the_feed_goes_on(settings: Settings) -> None:
    """Media ids are Media keys: a record under a new id carrying listing a's media (copied as they
    are, or with the owner rewritten to itself) must not stop every later update on a duplicate key."""
    land(settings, "s1", [{**prop("a", 1), "media": [photo("m1", "a"), photo("m2", "a", 2)]}])
    assert run_update(settings.paths).state == "COMPLETED"

    copied = {**prop("b", 2), "media": [photo("m1", "a"), photo("m3", "b")]}
    forged = {**prop("c", 2), "media": [photo("m2", "c")]}
    land_lines(settings, "s2", [line(copied), line(forged)])
    result = run_update(settings.paths)

    assert result.state == "COMPLETED" and result.published
    assert gold_media(settings) == {"QOBRIX_MEDIA_m1": "a", "QOBRIX_MEDIA_m2": "a", "QOBRIX_MEDIA_m3": "b"}
    held = {
        (orjson.loads(row["record"]).get("media_id") or orjson.loads(row["record"]).get("MediaKey"), row["dataset"]):
            list(row["broken_rules"])
        for row in rows(settings, "mls2_system.quarantine")
    }  # fmt: skip
    assert held == {
        ("m1", "qobrix_silver.media"): ["media_is_this_listings"],
        ("QOBRIX_MEDIA_m2", "reso_gold.media"): ["MediaKey_unique"],
    }

    quality = data_quality(settings, result.update_id, "reso_gold.media")
    [unique] = [e for e in quality["expectations"] if e["name"] == "MediaKey_unique"]
    # The event log's entry as DLT writes one (what the dashboards read): the dataset and both counts.
    assert set(unique) == {"name", "dataset", "passed_records", "failed_records"}
    assert unique["dataset"] == "reso_gold.media" and unique["failed_records"] == 1 and unique["passed_records"] >= 1

    land(settings, "s3", [prop("d", 3)])
    assert run_update(settings.paths).state == "COMPLETED"
    assert "QOBRIX_d" in gold_prices(settings)


def test_which_listing_keeps_a_duplicate_key_does_not_depend_on_the_order_of_updates(settings: Settings) -> None:
    """The row first by source id keeps a key, whether the view is refreshed by key or computed whole,
    and the other gets it back once the first lets it go."""
    land(settings, "s1", [{**prop("b", 1), "media": [photo("m1", "b")]}])
    run_update(settings.paths)
    land(settings, "s2", [{**prop("a", 2), "media": [photo("m1", "a")]}])
    assert run_update(settings.paths).state == "COMPLETED"
    assert gold_media(settings) == {"QOBRIX_MEDIA_m1": "a"}
    assert run_update(settings.paths, full_refresh=True).state == "COMPLETED"
    assert gold_media(settings) == {"QOBRIX_MEDIA_m1": "a"}

    land(settings, "s3", [{**prop("a", 3), "media": []}])
    run_update(settings.paths)
    assert gold_media(settings) == {"QOBRIX_MEDIA_m1": "b"}
    land(settings, "s4", [prop("c", 4)])
    run_update(settings.paths)
    assert gold_media(settings) == {"QOBRIX_MEDIA_m1": "b"}


def test_compressed_and_uncompressed_pages_are_read_and_a_damaged_one_is_named_and_held_back(
    settings: Settings,
) -> None:
    """Pages land gzip-compressed; those an earlier version landed uncompressed still read. A page whose
    compression is damaged fails the update naming the file, with nothing half read; once the page is
    set aside, the next update converges."""
    land(settings, "s1", [prop("a", 1)])
    [compressed] = settings.paths.landing.glob("properties/*/s1/page-000001.jsonl.gz")
    old_style = compressed.with_name("page-000002.jsonl")
    old_style.write_bytes(orjson.dumps({"entity": "properties", "operation": "upsert", "record": prop("b", 1)}) + b"\n")
    run_update(settings.paths)
    assert set(gold_prices(settings)) == {"QOBRIX_a", "QOBRIX_b"}

    land(settings, "s2", [prop("c", 2)])
    [damaged] = settings.paths.landing.glob("properties/*/s2/page-000001.jsonl.gz")
    damaged.write_bytes(damaged.read_bytes()[:-12])
    land(settings, "s3", [prop("d", 3)])
    with pytest.raises(UpdateFailed, match=rf"GZIP stream: .*{damaged.parent.name}/{damaged.name}"):
        run_update(settings.paths)
    assert set(gold_prices(settings)) == {"QOBRIX_a", "QOBRIX_b"}
    damaged.rename(settings.paths.landing / "_set_aside.jsonl.gz")
    run_update(settings.paths)
    assert set(gold_prices(settings)) == {"QOBRIX_a", "QOBRIX_b", "QOBRIX_d"}


def test_a_landing_line_longer_than_the_limit_fails_the_update_naming_the_file(settings: Settings) -> None:
    """A line past 64 MiB (here a malformed page kept whole) is refused loudly, never dropped without a
    word (DuckDB drops a line longer than its read buffer)."""
    writer = LandingWriter(settings.landing_root, "s1", started=T0)
    page = writer.write_malformed(entities()["properties"], b"y" * (65 * 2**20))
    with pytest.raises(UpdateFailed, match=rf"Maximum line size of 67108864 bytes exceeded(.|\n)*{page}"):
        run_update(settings.paths)
