"""Deterministic Qobrix-shaped records, each computed from (seed, entity, index, version).

Nothing is stored: record i of a sandbox of any size is rebuilt on demand from its
index, so a sandbox of 1,000,000 properties needs no more memory than one of 1,000.
"""

import hashlib
import random
import uuid
from datetime import UTC, datetime

HISTORY_START = datetime(2024, 1, 1, tzinfo=UTC)
"""Creation time of the first generated record."""
HISTORY_END = datetime(2026, 1, 1, tzinfo=UTC)
"""The sandbox clock at step 0: every generated record was created and modified before it."""

CITIES = [
    ("Limassol", "Limassol", "CY", "3025", 34.6786, 33.0413),
    ("Nicosia", "Nicosia", "CY", "1010", 35.1856, 33.3823),
    ("Paphos", "Paphos", "CY", "8010", 34.7754, 32.4218),
    ("Larnaca", "Larnaca", "CY", "6020", 34.9003, 33.6232),
    ("Ayia Napa", "Famagusta", "CY", "5330", 34.9823, 33.9996),
    ("Athens", "Attica", "GR", "10552", 37.9838, 23.7275),
    ("Thessaloniki", "Central Macedonia", "GR", "54624", 40.6401, 22.9444),
    ("Valletta", "Malta", "MT", "VLT 1010", 35.8989, 14.5146),
    ("Lisbon", "Lisboa", "PT", "1100-148", 38.7223, -9.1393),
    ("Marbella", "Malaga", "ES", "29601", 36.5101, -4.8825),
]
STATUSES = ["available", "available", "available", "reserved", "under_offer", "sold", "rented", "withdrawn", "pending"]
SALE_RENT = ["for_sale", "for_sale", "for_rent", "for_sale_and_rent", "for_management", "for_auction"]
PROPERTY_TYPES = ["apartment", "house", "land", "office", "retail", "industrial", "hotel", "building"]
RENT_FREQUENCIES = ["Monthly", "Monthly", "Yearly", "Weekly", "Quarterly", "Daily"]


def rng_for(seed: int, entity: str, index: int, version: int = 0) -> random.Random:
    """A random source that depends only on its arguments (not on PYTHONHASHSEED)."""
    return random.Random(f"{seed}:{entity}:{index}:{version}")


def stable_uuid(seed: int, entity: str, index: int) -> str:
    """The record's id: a version-4 UUID derived from seed, entity and index."""
    digest = hashlib.blake2b(f"{seed}:{entity}:{index}".encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest, version=4))


def qobrix_timestamp(moment: datetime) -> str:
    """Qobrix's usual wire format for date-times: ISO 8601 with seconds and offset."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def base_created(index: int, total: int) -> datetime:
    """Creation time of record `index`: spread evenly, in index order, across the history."""
    span = (HISTORY_END - HISTORY_START) / max(total, 1)
    return HISTORY_START + span * index


def base_modified(index: int, total: int) -> datetime:
    """Last modification before the sandbox started; increases with the index."""
    span = (HISTORY_END - HISTORY_START) / max(total, 1)
    return base_created(index, total) + span * 0.5


def property_record(seed: int, index: int, total: int, version: int = 0, modified: datetime | None = None) -> dict:
    """Property `index` as Qobrix returns it with `expand=false&media=false`.

    `version` counts the edits made since the sandbox started; each edit re-draws
    the fields an agent changes most (price, status), from its own random source.
    """
    rng = rng_for(seed, "properties", index)
    city, state, country, post_code, lat, lon = rng.choice(CITIES)
    property_type = rng.choice(PROPERTY_TYPES)
    sale_rent = rng.choice(SALE_RENT)
    created = base_created(index, total)
    edit = rng_for(seed, "properties", index, version)
    selling = round(edit.uniform(60_000, 3_000_000), -2) if sale_rent != "for_rent" else None
    renting = round(edit.uniform(400, 12_000), -1) if sale_rent in ("for_rent", "for_sale_and_rent") else None
    bedrooms = None if property_type in ("land", "office", "retail", "industrial") else rng.randint(0, 6)
    return {
        "id": stable_uuid(seed, "properties", index),
        "ref": index + 1,
        "name": f"{bedrooms or ''} {property_type.title()} in {city}".strip(),
        "property_type": property_type,
        "status": edit.choice(STATUSES),
        "sale_rent": sale_rent,
        "list_selling_price_amount": selling,
        "list_rental_price_amount": renting,
        "rent_frequency": edit.choice(RENT_FREQUENCIES) if renting is not None else None,
        "bedrooms": bedrooms,
        "bathrooms": None if bedrooms is None else max(1, bedrooms - rng.randint(0, 1)),
        "city": city,
        "state": state,
        "country": country,
        "post_code": post_code,
        "coordinates": f"{lat + rng.uniform(-0.05, 0.05):.6f},{lon + rng.uniform(-0.05, 0.05):.6f}",
        "created": qobrix_timestamp(created),
        "modified": qobrix_timestamp(modified or base_modified(index, total)),
        "trashed": None,
    }
