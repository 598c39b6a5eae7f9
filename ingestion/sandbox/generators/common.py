"""What every entity family draws and stamps with: weighted draws, pooled blocks, record stamps, wire formats."""

import random
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from ingestion.sandbox import catalog

HISTORY_START = datetime(2024, 1, 1, tzinfo=UTC)
"""Creation time of the first generated record of every entity."""
HISTORY_END = datetime(2026, 1, 1, tzinfo=UTC)
"""The sandbox clock at step 0: every generated record was created and modified before it."""
LOOKUPS_CREATED = datetime(2023, 6, 1, tzinfo=UTC)
EDIT_SALT = 0xED17
"""Salts the random stream of what an edit changes, apart from what never changes."""
BLOCK_VARIANTS = 97
"""Variants pooled per kind of block (buildings per property type, listings, contact preferences)."""
RESIDENTIAL = {"apartment", "house"}
COMMERCIAL = {"office", "retail", "industrial", "hotel", "building"}


def weighted(values: list, weights: list[int]) -> tuple:
    """A lookup table drawing `values` with `weights`: `table[int(rng.random() * len(table))]` (fast)."""
    return tuple(value for value, weight in zip(values, weights, strict=True) for _ in range(weight))


def draw(rng: random.Random, table: tuple):
    return table[int(rng.random() * len(table))]


PROPERTY_TYPE_CODES = [code for code, _, _ in catalog.PROPERTY_TYPES]
TYPE_TABLE = weighted(PROPERTY_TYPE_CODES, catalog.PROPERTY_TYPE_WEIGHTS)
"""Property types as often as listings have them (what properties are, and what opportunities ask for)."""


@dataclass(frozen=True)
class Block:
    """Fields shared by many records, with their JSON (object members, no braces) made once."""

    fields: dict
    json: bytes
    meta: dict

    @classmethod
    def of(cls, fields: dict, meta: dict | None = None) -> "Block":
        return cls(fields=fields, json=orjson.dumps(fields)[1:-1], meta=meta or {})


@dataclass(frozen=True)
class Stamp:
    """The state of one record version: when it was made and changed, and how often."""

    created: datetime
    modified: datetime
    version: int = 0
    trashed: datetime | None = None
    media_version: int = 0
    last_media_update: datetime | None = None


def timestamp(moment: datetime | None) -> str | None:
    """Qobrix's usual wire format: ISO 8601, seconds, with offset (sandbox times are whole UTC seconds)."""
    return None if moment is None else moment.isoformat()


def day(moment: datetime) -> str:
    return moment.date().isoformat()


def money(value: float) -> float:
    return float(round(value, -2) if value >= 10_000 else round(value, -1))
