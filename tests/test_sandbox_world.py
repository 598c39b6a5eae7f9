"""The sandbox's data: deterministic, referentially whole, changing over time, fast paths exact."""

import tracemalloc
from datetime import datetime

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestion.sandbox import SandboxWorld
from ingestion.sandbox.generators.entities import ENTITIES, SUBTYPES
from ingestion.sandbox.search import matches, parse
from ingestion.sandbox.world import Changes


def all_records(world: SandboxWorld, entity: str, **options: object) -> list[dict]:
    records, count = world.list_records(entity, limit=10**9, expand=False, media=False, **options)
    assert len(records) == count
    return records


def test_same_seed_and_size_give_the_same_bytes() -> None:
    first, again = SandboxWorld(seed=5, properties=300), SandboxWorld(seed=5, properties=300)
    for world in (first, again):
        world.advance(steps=4)
    for entity in ENTITIES:
        pages = [orjson.dumps(world.list_records(entity, page=2, limit=50)) for world in (first, again)]
        assert pages[0] == pages[1], entity


def test_another_seed_gives_other_records() -> None:
    one, other = SandboxWorld(seed=5, properties=300), SandboxWorld(seed=6, properties=300)
    ids = [{r["id"] for r in all_records(world, "properties")} for world in (one, other)]
    assert not ids[0] & ids[1]
    assert [r["name"] for r in all_records(one, "properties")[:20]] != [
        r["name"] for r in all_records(other, "properties")[:20]
    ]


def test_a_million_properties_cost_no_more_memory_than_a_thousand() -> None:
    def footprint(size: int) -> int:
        tracemalloc.start()
        world = SandboxWorld(seed=1, properties=size)
        records, count = world.list_records("properties", page=size // 100 - 1, limit=100)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert count == size and len(records) == 100
        return peak

    small, large = footprint(1_000), footprint(1_000_000)
    assert large < small * 1.5 + 2_000_000


def test_references_resolve_to_existing_records() -> None:
    world = SandboxWorld(seed=11, properties=600)
    world.advance(steps=6)
    ids = {entity: world.live_ids(entity) | world.live_ids(entity, trashed=True) for entity in ENTITIES}
    codes = {
        "types": {r["code"] for r in all_records(world, "property-types")},
        "subtypes": {r["code"] for r in all_records(world, "property-subtypes")},
        "features": {(r["field"], r["code"]) for r in all_records(world, "property-features")},
    }
    references = {
        "properties": {"agent": "agents", "salesperson": "users", "seller": "contacts", "project": "projects",
                       "location": "locations", "developer_id": "contacts", "created_by": "users",
                       "modified_by": "users"},
        "agents": {"primary_contact": "contacts", "agency": "agents", "owner": "users"},
        "users": {"contact_id": "contacts"},
        "projects": {"developer_id": "contacts", "location": "locations", "assigned_to": "users"},
        "property-viewings": {"property_id": "properties", "viewing_id": "meetings"},
        "meetings": {"contact": "contacts", "assigned_to": "users", "related_agent": "agents"},
        "opportunities": {"contact_name": "contacts", "agent": "agents"},
        "contacts": {"assigned_to": "users"},
    }  # fmt: skip
    for entity, fields in references.items():
        for record in all_records(world, entity) + all_records(world, entity, trashed=True):
            for field_name, target in fields.items():
                value = record[field_name]
                assert value is None or value in ids[target], (entity, field_name, value)
    for record in all_records(world, "properties"):
        assert record["property_type"] in codes["types"]
        assert record["property_subtype"] in {code for code, _, t in SUBTYPES if t == record["property_type"]}
        for field_name in ("view", "heating", "pool_features", "flooring"):
            assert all((field_name, code) in codes["features"] for code in record[field_name])
    assert {r["qobrix_location_id"] for r in all_records(world, "bazaraki-locations")} - {None} <= ids["locations"]


def test_records_look_real() -> None:
    world = SandboxWorld(seed=2, properties=2000)
    records = all_records(world, "properties")
    countries = {r["country"] for r in records}
    assert {"CY", "GR"} <= countries
    for record in records:
        lat, lon = map(float, record["coordinates"].split(","))
        assert -90 <= lat <= 90 and -180 <= lon <= 180
        assert record["list_selling_price_amount"] is None or record["list_selling_price_amount"] > 10_000
        assert record["sale_rent"] != "for_rent" or record["list_rental_price_amount"]
        assert record["created"] <= record["modified"]
    assert {r["status"] for r in records} == {
        "available",
        "reserved",
        "under_offer",
        "sold",
        "rented",
        "withdrawn",
        "pending",
    }
    assert {r["sale_rent"] for r in records} == {
        "for_sale",
        "for_rent",
        "for_sale_and_rent",
        "for_management",
        "for_auction",
    }
    assert {r["furnished"] for r in records} >= {"furnished", "semi_furnished", "optionally_furnished", "unfurnished"}
    contacts = all_records(world, "contacts")
    assert any(c["is_company"] for c in contacts) and any(not c["is_company"] for c in contacts)
    assert all(a["name"] for a in all_records(world, "agents"))


def test_advance_creates_edits_trashes_restores_and_deletes() -> None:
    world = SandboxWorld(seed=3, properties=500)
    before = {r["id"]: r for r in all_records(world, "properties")}
    changes = {"properties": Changes(creates=2, updates=5, media_updates=2, trashes=2, deletes=1)}
    report = world.advance(changes=changes)
    after = {r["id"]: r for r in all_records(world, "properties")}
    assert set(report.ids("properties", "created")) == set(after) - set(before) - set(
        report.ids("properties", "restored")
    )
    assert set(report.ids("properties", "deleted")) | set(report.ids("properties", "trashed")) == set(before) - set(
        after
    )
    for record_id in report.ids("properties", "updated"):
        assert after[record_id]["modified"] > before[record_id]["modified"]
        assert datetime.fromisoformat(after[record_id]["modified"]) <= report.clock
    for record_id in report.ids("properties", "media_updated"):
        old, new = (world_record for world_record in (before[record_id], after[record_id]))
        assert new["last_media_update"] > old["last_media_update"]
    media_id = report.ids("properties", "media_updated")[0]
    index = world.index_of("properties", media_id)
    assert world.inline_media("properties", index, after[media_id])[0]["id"] not in {
        m["id"]
        for m in SandboxWorld(seed=3, properties=500).present("properties", index, expand=False, media=True)["media"]
    }
    trashed = world.live_ids("properties", trashed=True)
    assert trashed == set(report.ids("properties", "trashed"))
    restored = world.advance(changes={"properties": Changes(restores=1)})
    assert set(restored.ids("properties", "restored")) <= trashed
    assert set(restored.ids("properties", "restored")) <= world.live_ids("properties")


def test_updated_prices_keep_a_history() -> None:
    world = SandboxWorld(seed=4, properties=400)
    report = world.advance(changes={"properties": Changes(updates=30)})
    edited = [world.record("properties", world.index_of("properties", i)) for i in report.ids("properties", "updated")]
    moved = [r for r in edited if r["previous_list_selling_price"] is not None]
    assert moved and all(r["list_selling_price_modified"] == r["modified"] for r in moved)


EXPRESSIONS = st.sampled_from([
    "modified >= '{t}'", "modified > '{t}'", "modified < '{t}'", "created >= '{t}' or modified >= '{t}'",
    "modified >= '{t}' and modified <= '{u}'", "not (modified < '{t}')", "ref in 1..150",
    "ref <= 40 or modified >= '{t}'",
    "status == 'available' and modified >= '{t}'", "status in ['sold', 'rented']", "modified == '{t}'",
    "last_media_update >= '{t}'", "modified >= '{t}' or last_media_update >= '{u}'",
])  # fmt: skip
MOMENTS = st.sampled_from(
    ["2024-03-01 00:00:00", "2025-06-15T12:00:00+00:00", "2026-01-01 00:00:00", "2026-01-01 00:40:00", "2025-12-31"]
)
SORTS = st.sampled_from(
    [
        (),
        ("modified",),
        ("-modified",),
        ("created",),
        ("ref",),
        ("-ref",),
        ("status", "-modified"),
        ("last_media_update",),
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expression=EXPRESSIONS, t=MOMENTS, u=MOMENTS, sort=SORTS, trashed=st.booleans(), steps=st.integers(0, 4))
def test_fast_paging_equals_brute_force(
    expression: str, t: str, u: str, sort: tuple, trashed: bool, steps: int
) -> None:
    world = SandboxWorld(seed=9, properties=240)
    world.advance(
        steps=steps,
        changes={"properties": Changes(creates=3, updates=8, media_updates=3, trashes=3, restores=1, deletes=2)},
    )
    search = expression.format(t=t, u=u)
    tree = parse(search, "Properties", world.fields("properties"))
    state = world.states["properties"]
    live = [
        i for i in range(state.total) if world.exists("properties", i) and world.is_trashed("properties", i) == trashed
    ]
    expected = [i for i in live if matches(tree, world.record("properties", i))]
    if sort:
        expected.sort(key=lambda i: world._generic_key("properties", sort, i))
    pages = [
        world.list_indices("properties", page=p, limit=17, search=search, sort=sort, trashed=trashed)
        for p in range(1, 20)
    ]
    got = [i for indices, _ in pages for i in indices]
    assert pages[0][1] == len(expected)
    if sort and sort[0].lstrip("-") in ("modified", "created", "last_media_update"):
        key = sort[0].lstrip("-")
        values = [world.record("properties", i)[key] for i in got]
        assert values == sorted(values, reverse=sort[0].startswith("-"))
        assert sorted(got) == sorted(expected)
    else:
        assert got == expected


def test_search_expressions_parse_the_documented_forms() -> None:
    fields = frozenset({"modified", "status", "name", "ref", "bedrooms"})
    record = {
        "modified": "2025-12-02T10:00:00+00:00",
        "status": "available",
        "name": "Villa Aphrodite",
        "ref": 3,
        "bedrooms": None,
    }
    cases = {
        "modified >= '2025-12-02 10:00:00'": True,
        "modified > '2025-12-02T10:00:00+00:00'": False,
        "Properties.status in ['available', 'sold'] and not (name ends with '(SOLD)')": True,
        "status not in ['available']": False,
        'ref in 1..10 && name starts with "Villa"': True,
        "bedrooms == null || name contains 'x'": True,
        "status <> 'available' or ref >= 4": False,
        "'2025-12-03' > modified": True,
    }
    for expression, expected in cases.items():
        assert matches(parse(expression, "Properties", fields), record) is expected, expression


@pytest.mark.parametrize("size", [1, 7, 150])
def test_tiny_sandboxes_work(size: int) -> None:
    world = SandboxWorld(seed=1, properties=size)
    world.advance(steps=2)
    for entity in ENTITIES:
        records, count = world.list_records(entity, limit=100)
        assert len(records) == min(count, 100)
