"""Every Qobrix value of every mapping's value table, landed and run through the pipeline, reaches gold
as the RESO value pinned here.

The expected tables are written out below, not read from `conf/mappings/`: a value mapped to the
wrong RESO value, or dropped from a table, fails here in the fast suite. A table whose every value
is a RESO value kept as it is (`values: same`: countries, states) is expected to pass each value
of the RESO Data Dictionary lookup through unchanged.
"""

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conf.entities import entities
from conf.mappings import resource_mappings
from conf.settings import Settings, load_settings
from ingestion.landing import LandingWriter
from ingestion.sandbox import SandboxServer, SandboxWorld
from pipelines import run_update
from pipelines._engine.lakehouse import Lakehouse
from tests.conftest import delta_rows, make_sync
from tests.landing_checks import landed, latest
from tests.pinned_values import EXPECTED, PASSED_THROUGH

DD_LOOKUPS = json.loads((Path(__file__).parent / "contracts" / "reso_dd.json").read_text())["lookups"]

LIST_FIELDS = {
    "view", "pool_features", "heating", "cooling", "flooring", "fencing", "fireplace_features",
    "waterfront_features", "patio_porch", "other_structures", "association_amenities", "appliances",
    "community_features", "exterior_features", "interior_features", "lot_features", "security_features",
}  # fmt: skip
"""Qobrix property fields that arrive as lists of codes."""

PROPERTY_SOURCES = {
    "StandardStatus": "status", "PropertySubType": "property_subtype", "PropertyCondition": "construction_stage",
    "LeaseAmountFrequency": "rent_frequency", "LeaseTerm": "minimum_tenancy",
    "Country": "country", "Furnished": "furnished", "OccupantType": "occupancy", "View": "view",
    "PoolFeatures": "pool_features", "Heating": "heating", "Cooling": "cooling", "Flooring": "flooring",
    "Fencing": "fencing", "FireplaceFeatures": "fireplace_features", "WaterfrontFeatures": "waterfront_features",
    "PatioAndPorchFeatures": "patio_porch", "OtherStructures": "other_structures",
    "AssociationAmenities": "association_amenities", "Appliances": "appliances",
    "CommunityFeatures": "community_features", "ExteriorFeatures": "exterior_features",
    "InteriorFeatures": "interior_features", "LotFeatures": "lot_features", "SecurityFeatures": "security_features",
}  # fmt: skip
"""The Qobrix property field each Property lookup is translated from."""

CONTACT_SOURCES = {
    ("Contacts", "HomeCountry"): "country",
    ("Contacts", "ContactType"): "role",
    ("Contacts", "Language"): "preferred_language",
}
AGENT_CONTACT_SOURCES = {
    ("Member", "MemberCountry"): "country",
    ("Member", "MemberLanguages"): "preferred_language",
    ("Office", "OfficeCountry"): "country",
}
"""Members and offices take these from the contact an agency agent names as its primary contact."""


def pinned(resource: str, field: str) -> dict[str, str]:
    if (resource, field) in PASSED_THROUGH:
        return {value: value for value in DD_LOOKUPS[PASSED_THROUGH[resource, field]].values()}
    return EXPECTED[resource, field]


def codes(resource: str, field: str) -> list[str]:
    return list(pinned(resource, field))


def test_every_value_table_of_the_mappings_is_pinned_here() -> None:
    tables = {
        (mapping.resource, field.name): set(field.values)
        for mapping in resource_mappings().values()
        for field in mapping.fields
        if field.values
    }
    assert set(tables) == set(EXPECTED) | set(PASSED_THROUGH)
    for table, values in tables.items():
        assert values == set(pinned(*table)), f"{table}: the mapping translates other Qobrix values than pinned here"


def cycled(values: list[str], index: int) -> str:
    return values[index % len(values)]


def property_clones(base: dict, media_base: dict) -> list[dict]:
    """One listing per value of the longest Property table, each carrying a value of every table; the
    first ones each carry one photo of a media type."""
    count = max(len(codes("Property", field)) for field in PROPERTY_SOURCES)
    mime_types = codes("Media", "MediaType")
    clones = []
    for index in range(count):
        record = {**copy.deepcopy(base), "id": f"pin-{index}", "project": None, "media": []}
        for field, source in PROPERTY_SOURCES.items():
            value = cycled(codes("Property", field), index)
            record[source] = [value] if source in LIST_FIELDS else value
        if index < len(mime_types):
            media = copy.deepcopy(media_base)
            media.update(id=f"pin-media-{index}", related_id=record["id"])
            media["file"]["mime_type"] = mime_types[index]
            record["media"] = [media]
        clones.append(record)
    return clones


STATES = {
    ("CY", "Nicosia"): "01", ("CY", "Lefkosia"): "01", ("CY", "Limassol"): "02", ("CY", "Lemesos"): "02",
    ("CY", "Larnaca"): "03", ("CY", "Larnaka"): "03", ("CY", "Famagusta"): "04", ("CY", "Ammochostos"): "04",
    ("CY", "Paphos"): "05", ("CY", "Pafos"): "05", ("CY", "Kyrenia"): "06", ("CY", "Keryneia"): "06",
    ("GR", "Eastern Macedonia and Thrace"): "A", ("GR", "Central Macedonia"): "B",
    ("GR", "Western Macedonia"): "C", ("GR", "Epirus"): "D", ("GR", "Thessaly"): "E",
    ("GR", "Ionian Islands"): "F", ("GR", "Western Greece"): "G", ("GR", "Central Greece"): "H",
    ("GR", "Attica"): "I", ("GR", "Peloponnese"): "J", ("GR", "North Aegean"): "K", ("GR", "South Aegean"): "L",
    ("GR", "Crete"): "M", ("GR", "Mount Athos"): "69", ("GR", " crete "): "M",
    ("US", "ca"): "CA", ("CA", "ON"): "ON", ("PT", "Lisboa"): None, ("CY", "Not a district"): None,
    ("CY", " "): None,
}  # fmt: skip
"""A Qobrix (country, state) -> StateOrProvince: ISO 3166-2 subdivision codes for Cyprus and Greece,
two-letter names taken as codes, other names left for X_StateName."""

ELECTRIC = {"single_phase": ["Single Phase"], "three_phase": ["Three Phase"], "industrial": ["Industrial"],
            "solar_only": ["solar_only"], None: []}  # fmt: skip
"""Qobrix's electricity_type -> Electric (local values of DD 2.0's open lookup; new codes kept)."""


def derived_clones(base: dict) -> list[dict]:
    """Listings carrying each pinned state and electricity type."""
    clones = []
    for index, (country, state) in enumerate(STATES):
        clones.append({**copy.deepcopy(base), "id": f"pin-state-{index}", "project": None, "media": [],
                       "country": country, "state": state})  # fmt: skip
    for index, supply in enumerate(ELECTRIC):
        clones.append({**copy.deepcopy(base), "id": f"pin-electric-{index}", "project": None, "media": [],
                       "electricity_type": supply})  # fmt: skip
    return clones


def contact_clones(base: dict, prefix: str, sources: dict[tuple[str, str], str]) -> list[dict]:
    """Contacts carrying every value of each table in `sources`, in the Qobrix field it names."""
    count = max(len(codes(*table)) for table in sources)
    records = []
    for index in range(count):
        record = {**base, "id": f"{prefix}-{index}"}
        for table, source in sources.items():
            record[source] = cycled(codes(*table), index)
        records.append(record)
    return records


@pytest.fixture(scope="module")
def gold(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """A small sandbox synced, plus records carrying every pinned value, through one update."""
    settings: Settings = load_settings(mls2_data_dir=tmp_path_factory.mktemp("value_tables") / "data")
    with SandboxServer(SandboxWorld(seed=3, properties=30)) as server:
        make_sync(settings, server)()
    synced = {entity: list(latest(lines).values()) for entity, lines in landed(settings).items()}
    listing = next(r for r in synced["properties"] if r.get("media"))
    properties = property_clones(listing, listing["media"][0]) + derived_clones(listing)

    contact = synced["contacts"][0]
    contacts = contact_clones(contact, "pin-contact", CONTACT_SOURCES)
    agent_contacts = contact_clones(contact, "pin-agent-contact", AGENT_CONTACT_SOURCES)
    agent = next(r for r in synced["agents"] if r.get("agent_type") == "agency")
    agents = [
        {**agent, "id": f"pin-agent-{index}", "primary_contact": record["id"], "agency": None}
        for index, record in enumerate(agent_contacts)
    ]
    methods = codes("ShowingAppointment", "ShowingAppointmentMethod")
    meetings = [
        {**synced["meetings"][0], "id": f"pin-meeting-{index}", "viewing_type": method}
        for index, method in enumerate(methods)
    ]
    viewings = [
        {**synced["property-viewings"][0], "id": f"pin-viewing-{index}", "viewing_id": f"pin-meeting-{index}"}
        for index in range(len(methods))
    ]
    writer = LandingWriter(settings.landing_root, "pinned-values", started=datetime.now(UTC))
    for entity, records in [("properties", properties), ("contacts", contacts + agent_contacts), ("agents", agents),
                            ("meetings", meetings), ("property-viewings", viewings)]:  # fmt: skip
        writer.write_page(entities()[entity], records)
    run_update(settings.paths)
    lakehouse = Lakehouse(settings.paths.lakehouse)
    return {
        mapping.resource: delta_rows(lakehouse.table(mapping.table)).to_pylist()
        for mapping in resource_mappings().values()
    }


def carried(rows: list[dict], key: str, prefix: str, table: tuple[str, str]) -> dict[str, object]:
    """Each pinned code of `table` against what gold holds in its field for the row that carried it
    (the row whose `key` is `prefix` and the code's position); a multi-select's one value unwrapped."""
    by_key = {row[key]: row for row in rows}
    result = {}
    for index, code in enumerate(codes(*table)):
        row = by_key.get(f"{prefix}{index}")
        assert row is not None, f"{table}: no gold row {prefix}{index}, which carried {code!r}"
        value = row[table[1]]
        if isinstance(value, list):
            assert len(value) == 1, f"{table}: {code!r} became {value}"
            value = value[0]
        result[code] = value
    return result


ROW_KEYS = {
    "Property": ("OriginatingSystemKey", "pin-"),
    "Media": ("OriginatingSystemMediaKey", "pin-media-"),
    "Contacts": ("OriginatingSystemContactKey", "pin-contact-"),
    "Member": ("OriginatingSystemMemberKey", "pin-agent-"),
    "Office": ("OriginatingSystemOfficeKey", "pin-agent-"),
    "ShowingAppointment": ("ShowingAppointmentKey", "QOBRIX_VIEWING_pin-viewing-"),
}
"""How the row that carried a pinned value is found in each resource: its key column and key prefix."""


@pytest.mark.parametrize("table", sorted({*EXPECTED, *PASSED_THROUGH}), ids="{0[0]}.{0[1]}".format)
def test_each_qobrix_value_reaches_gold_as_its_pinned_reso_value(
    gold: dict[str, list[dict]], table: tuple[str, str]
) -> None:
    key, prefix = ROW_KEYS[table[0]]
    assert carried(gold[table[0]], key, prefix, table) == pinned(*table)


def test_a_qobrix_state_reaches_gold_as_its_subdivision_code_and_keeps_its_name(gold: dict[str, list[dict]]) -> None:
    by_key = {row["OriginatingSystemKey"]: row for row in gold["Property"]}
    served = {pair: by_key[f"pin-state-{index}"]["StateOrProvince"] for index, pair in enumerate(STATES)}
    assert served == STATES
    assert all(by_key[f"pin-state-{i}"]["X_StateName"] == state for i, (_, state) in enumerate(STATES) if state.strip())


def test_a_qobrix_electricity_type_reaches_gold_as_an_electric_value(gold: dict[str, list[dict]]) -> None:
    by_key = {row["OriginatingSystemKey"]: row for row in gold["Property"]}
    assert {supply: by_key[f"pin-electric-{i}"]["Electric"] for i, supply in enumerate(ELECTRIC)} == ELECTRIC
