"""Landing lines a clumsy operator or a broken sync could leave, through the real pipeline: each is
quarantined with its reason, and the listing it names keeps its last good values in gold."""

from datetime import timedelta

import orjson

from conf.entities import entities
from conf.settings import Settings
from ingestion.landing import LandingWriter
from pipelines import run_update
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
