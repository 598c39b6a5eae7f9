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
from tests.conftest import make_sync
from tests.landing_checks import landed, latest

DD_LOOKUPS = json.loads((Path(__file__).parent / "contracts" / "reso_dd.json").read_text())["lookups"]

EXPECTED: dict[tuple[str, str], dict[str, str]] = {
    ("Contacts", "ContactType"): {
        "buyer": "Buyer",
        "seller": "Seller",
        "tenant": "Tenant",
        "landlord": "Landlord",
        "lead": "Lead",
        "prospect": "Prospect",
        "owner": "Seller",
        "vendor": "Seller",
        "purchaser": "Buyer",
        "renter": "Tenant",
    },
    ("Contacts", "Language"): {
        "en": "English",
        "el": "Greek",
        "ru": "Russian",
        "de": "German",
        "fr": "French",
        "he": "Hebrew",
        "zh": "Chinese",
        "ar": "Arabic",
        "it": "Italian",
        "es": "Spanish",
        "pt": "Portuguese",
        "uk": "Ukrainian",
        "nl": "Dutch",
        "sv": "Swedish",
        "pl": "Polish",
        "ro": "Romanian",
        "bg": "Bulgarian",
        "tr": "Turkish",
        "fa": "Farsi",
    },
    ("Media", "MediaType"): {
        "image/jpeg": "jpeg",
        "image/jpg": "jpeg",
        "image/png": "png",
        "image/gif": "gif",
        "image/tiff": "tiff",
        "application/pdf": "pdf",
        "video/mp4": "mp4",
        "video/mpeg": "mpeg",
        "video/quicktime": "quicktime",
        "application/msword": "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
        "text/plain": "txt",
    },
    ("Member", "MemberLanguages"): {
        "en": "English",
        "el": "Greek",
        "ru": "Russian",
        "de": "German",
        "fr": "French",
        "he": "Hebrew",
        "zh": "Chinese",
        "ar": "Arabic",
        "it": "Italian",
        "es": "Spanish",
        "pt": "Portuguese",
        "uk": "Ukrainian",
        "nl": "Dutch",
        "sv": "Swedish",
        "pl": "Polish",
        "ro": "Romanian",
        "bg": "Bulgarian",
        "tr": "Turkish",
        "fa": "Farsi",
    },
    ("Property", "StandardStatus"): {
        "available": "Active",
        "reserved": "Pending",
        "under_offer": "Pending",
        "sold": "Closed",
        "rented": "Closed",
        "withdrawn": "Withdrawn",
        "pending": "Incomplete",
    },
    ("Property", "PropertySubType"): {
        "apartment": "Apartment",
        "penthouse": "Apartment",
        "studio": "Apartment",
        "duplex": "Duplex",
        "maisonette": "Apartment",
        "ground_floor_apartment": "Apartment",
        "loft": "Apartment",
        "flat": "Apartment",
        "condominium": "Condominium",
        "house": "Single Family Residence",
        "detached_house": "Single Family Residence",
        "semi_detached_house": "Single Family Residence",
        "bungalow": "Single Family Residence",
        "villa": "Single Family Residence",
        "cottage": "Single Family Residence",
        "townhouse": "Townhouse",
        "land": "Unimproved Land",
        "residential_land": "Unimproved Land",
        "commercial_land": "Unimproved Land",
        "industrial_land": "Unimproved Land",
        "tourist_land": "Unimproved Land",
        "agricultural_land": "Agriculture",
        "office": "Office",
        "office_space": "Office",
        "office_building": "Office",
        "serviced_office": "Office",
        "retail": "Retail",
        "shop": "Retail",
        "showroom": "Retail",
        "kiosk": "Retail",
        "restaurant": "Business",
        "industrial": "Industrial",
        "factory": "Industrial",
        "workshop": "Industrial",
        "warehouse": "Warehouse",
        "hotel": "Hotel/Motel",
        "boutique_hotel": "Hotel/Motel",
        "hotel_apartments": "Hotel/Motel",
        "residential_building": "Multi Family",
        "mixed_use_building": "Mixed Use",
    },
    ("Property", "PropertyCondition"): {
        "offplans": "To Be Built",
        "construction_phase": "Under Construction",
        "unfinished": "Under Construction",
        "completed": "New Construction",
    },
    ("Property", "LeaseAmountFrequency"): {
        "Yearly": "Annually",
        "Quarterly": "Quarterly",
        "Monthly": "Monthly",
        "Weekly": "Weekly",
        "Daily": "Daily",
    },
    ("Property", "LeaseTerm"): {
        "6": "6 Months",
        "12": "12 Months",
        "24": "24 Months",
    },
    ("Property", "Furnished"): {
        "furnished": "Furnished",
        "semi_furnished": "Partially",
        "optionally_furnished": "Negotiable",
        "unfurnished": "Unfurnished",
    },
    ("Property", "OccupantType"): {
        "rented": "Tenant",
        "unrented": "Vacant",
    },
    ("Property", "View"): {
        "sea": "Ocean",
        "ocean": "Ocean",
        "mountain": "Mountain(s)",
        "mountains": "Mountain(s)",
        "city": "City",
        "garden": "Garden",
        "pool": "Pool",
        "golf": "Golf Course",
        "panoramic": "Panoramic",
        "marina": "Marina",
        "lake": "Lake",
        "river": "River",
        "park": "Park/Greenbelt",
        "beach": "Beach",
        "bay": "Bay",
        "valley": "Valley",
        "forest": "Forest",
    },
    ("Property", "PoolFeatures"): {
        "private": "Private",
        "communal": "Community",
        "heated": "Heated",
        "infinity": "Infinity",
        "indoor": "Indoor",
        "salt_water": "Salt Water",
        "above_ground": "Above Ground",
        "in_ground": "In Ground",
    },
    ("Property", "Heating"): {
        "central": "Central",
        "underfloor": "Radiant Floor",
        "heat_pump": "Heat Pump",
        "electric": "Electric",
        "gas": "Natural Gas",
        "fireplace": "Fireplace(s)",
        "solar": "Solar",
        "wood_stove": "Wood Stove",
        "oil": "Oil",
        "geothermal": "Geothermal",
        "radiators": "Hot Water",
        "forced_air": "Forced Air",
    },
    ("Property", "Cooling"): {
        "central_air": "Central Air",
        "split_units": "Ductless",
        "ceiling_fans": "Ceiling Fan(s)",
        "heat_pump": "Heat Pump",
        "window_units": "Window Unit(s)",
        "wall_units": "Wall Unit(s)",
        "evaporative": "Evaporative Cooling",
    },
    ("Property", "Flooring"): {
        "marble": "Marble",
        "tiles": "Tile",
        "tile": "Tile",
        "ceramic_tiles": "Ceramic Tile",
        "wood": "Wood",
        "hardwood": "Hardwood",
        "parquet": "Parquet",
        "laminate": "Laminate",
        "carpet": "Carpet",
        "granite": "Granite",
        "vinyl": "Vinyl",
        "terrazzo": "Terrazzo",
        "stone": "Stone",
        "concrete": "Concrete",
        "bamboo": "Bamboo",
        "slate": "Slate",
    },
    ("Property", "Fencing"): {
        "wood": "Wood",
        "stone_wall": "Stone",
        "stone": "Stone",
        "wire": "Wire",
        "iron": "Wrought Iron",
        "wrought_iron": "Wrought Iron",
        "full": "Full",
        "partial": "Partial",
        "brick": "Brick",
        "chain_link": "Chain Link",
        "electric": "Electric",
    },
    ("Property", "FireplaceFeatures"): {
        "wood_burning": "Wood Burning",
        "gas": "Gas",
        "living_room": "Living Room",
        "decorative": "Decorative",
        "electric": "Electric",
        "bedroom": "Bedroom",
        "outside": "Outside",
    },
    ("Property", "WaterfrontFeatures"): {
        "beach_front": "Beach Front",
        "sea_front": "Ocean Front",
        "beach_access": "Beach Access",
        "canal_front": "Canal Front",
        "lake_front": "Lake Front",
        "river_front": "River Front",
        "waterfront": "Waterfront",
    },
    ("Property", "PatioAndPorchFeatures"): {
        "covered": "Covered",
        "terrace": "Terrace",
        "veranda": "Porch",
        "porch": "Porch",
        "patio": "Patio",
        "deck": "Deck",
        "enclosed": "Enclosed",
        "screened": "Screened",
    },
    ("Property", "OtherStructures"): {
        "guest_house": "Guest House",
        "shed": "Shed(s)",
        "garage": "Garage(s)",
        "storage_room": "Storage",
        "storage": "Storage",
        "gazebo": "Gazebo",
        "pergola": "Pergola",
        "greenhouse": "Greenhouse",
        "workshop": "Workshop",
        "pool_house": "Pool House",
    },
    ("Property", "AssociationAmenities"): {
        "gym": "Fitness Center",
        "fitness_center": "Fitness Center",
        "pool": "Pool",
        "indoor_pool": "Indoor Pool",
        "concierge": "Concierge",
        "spa": "Spa/Hot Tub",
        "tennis_court": "Tennis Court(s)",
        "playground": "Playground",
        "sauna": "Sauna",
        "clubhouse": "Clubhouse",
        "security": "Security",
        "elevator": "Elevator(s)",
        "parking": "Parking",
        "storage": "Storage",
        "gated": "Gated",
        "maintenance": "Maintenance",
        "bbq": "Barbecue",
    },
    ("Property", "Appliances"): {
        "dishwasher": "Dishwasher",
        "washing_machine": "Washer",
        "washer": "Washer",
        "refrigerator": "Refrigerator",
        "fridge": "Refrigerator",
        "oven": "Oven",
        "microwave": "Microwave",
        "dryer": "Dryer",
        "freezer": "Freezer",
        "cooktop": "Cooktop",
        "range_hood": "Range Hood",
        "water_heater": "Water Heater",
        "wine_cooler": "Wine Cooler",
    },
    ("Property", "CommunityFeatures"): {
        "gated": "Gated",
        "golf": "Golf",
        "park": "Park",
        "playground": "Playground",
        "pool": "Pool",
        "clubhouse": "Clubhouse",
        "fitness_center": "Fitness Center",
        "tennis_courts": "Tennis Court(s)",
        "restaurant": "Restaurant",
        "lake": "Lake",
    },
    ("Property", "ExteriorFeatures"): {
        "bbq": "Barbecue",
        "barbecue": "Barbecue",
        "garden": "Garden",
        "outdoor_kitchen": "Outdoor Kitchen",
        "lighting": "Lighting",
        "balcony": "Balcony",
        "courtyard": "Courtyard",
        "private_yard": "Private Yard",
        "outdoor_shower": "Outdoor Shower",
        "playground": "Playground",
        "tennis_court": "Tennis Court(s)",
    },
    ("Property", "InteriorFeatures"): {
        "high_ceilings": "High Ceilings",
        "walk_in_closet": "Walk-In Closet(s)",
        "walk_in_closets": "Walk-In Closet(s)",
        "built_in_features": "Built-in Features",
        "ceiling_fans": "Ceiling Fan(s)",
        "open_floorplan": "Open Floorplan",
        "pantry": "Pantry",
        "smart_home": "Smart Home",
        "sauna": "Sauna",
        "elevator": "Elevator",
        "wet_bar": "Wet Bar",
        "kitchen_island": "Kitchen Island",
        "storage": "Storage",
    },
    ("Property", "LotFeatures"): {
        "corner_lot": "Corner Lot",
        "level": "Level",
        "sloped": "Sloped",
        "landscaped": "Landscaped",
        "cul_de_sac": "Cul-De-Sac",
        "private": "Private",
        "views": "Views",
        "waterfront": "Waterfront",
        "garden": "Garden",
        "city_lot": "City Lot",
    },
    ("Property", "SecurityFeatures"): {
        "alarm": "Security System",
        "security_system": "Security System",
        "cctv": "Closed Circuit Camera(s)",
        "gated_entry": "Security Gate",
        "security_gate": "Security Gate",
        "smoke_detectors": "Smoke Detector(s)",
        "fire_alarm": "Fire Alarm",
        "security_guard": "Security Guard",
        "24_hour_security": "24 Hour Security",
    },
    ("ShowingAppointment", "ShowingAppointmentMethod"): {
        "in_person": "In-Person",
        "open_house": "In-Person",
        "virtual": "Virtual",
        "video": "Virtual",
    },
}


PASSED_THROUGH: dict[tuple[str, str], str] = {
    ("Contacts", "HomeCountry"): "Country",
    ("Member", "MemberCountry"): "Country",
    ("Office", "OfficeCountry"): "Country",
    ("Property", "StateOrProvince"): "StateOrProvince",
    ("Property", "Country"): "Country",
}
"""Tables that keep every value of a RESO lookup as it is, by the lookup they keep."""

LIST_FIELDS = {
    "view", "pool_features", "heating", "cooling", "flooring", "fencing", "fireplace_features",
    "waterfront_features", "patio_porch", "other_structures", "association_amenities", "appliances",
    "community_features", "exterior_features", "interior_features", "lot_features", "security_features",
}  # fmt: skip
"""Qobrix property fields that arrive as lists of codes."""

PROPERTY_SOURCES = {
    "StandardStatus": "status", "PropertySubType": "property_subtype", "PropertyCondition": "construction_stage",
    "LeaseAmountFrequency": "rent_frequency", "LeaseTerm": "minimum_tenancy", "StateOrProvince": "state",
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
    properties = property_clones(listing, listing["media"][0])

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
        mapping.resource: lakehouse.table(mapping.table).to_pyarrow_table().to_pylist()
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
