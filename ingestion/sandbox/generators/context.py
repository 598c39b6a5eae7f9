"""Identity and time every record shares: ids, random keys, base stamps, edit streams and audit fields.

One place so that every entity family stamps, identifies and edits its records the same way.
"""

import random
from datetime import UTC, datetime
from functools import cached_property, lru_cache

from ingestion.sandbox.generators.common import EDIT_SALT, HISTORY_END, HISTORY_START, LOOKUPS_CREATED, Stamp, timestamp
from ingestion.sandbox.generators.entities import ACTIVE_ENTITIES, ENTITIES, Sizes
from ingestion.sandbox.identity import IdCodec, rng_for, text_key, unit


class RecordContext:
    """The per-seed keys and per-size timelines the records of one sandbox are drawn from."""

    def __init__(self, seed: int, sizes: Sizes) -> None:
        self.seed = seed
        self.sizes = sizes
        self.codecs = {entity: IdCodec(seed, entity) for entity in ENTITIES}
        self.keys = {entity: text_key(seed, entity) for entity in (*ENTITIES, "media")}
        self.id = lru_cache(maxsize=200_000)(self._id)

    def _id(self, entity: str, index: int) -> str:
        return self.codecs[entity].encode(index)

    def index_of(self, entity: str, record_id: str) -> int | None:
        return self.codecs[entity].decode(record_id)

    @cached_property
    def _timelines(self) -> dict[str, tuple[float, float, float]]:
        """Per entity: (first creation, seconds between creations, how far after creation the last edit falls)."""
        timelines = {}
        for entity in ENTITIES:
            count = max(self.sizes.count(entity), 1)
            activity = entity in ACTIVE_ENTITIES
            start, end = (HISTORY_START, HISTORY_END) if activity else (LOOKUPS_CREATED, HISTORY_START)
            spacing = (end - start).total_seconds() / count
            timelines[entity] = (start.timestamp(), spacing, spacing * 0.9)
        return timelines

    def base_created(self, entity: str, index: int) -> datetime:
        """Creation time of base record `index`, evenly spread in index order over the history."""
        start, spacing, _ = self._timelines[entity]
        return datetime.fromtimestamp(int(start + spacing * index), UTC)

    def base_modified(self, entity: str, index: int) -> datetime:
        """Last change before the sandbox started; increases strictly with the index."""
        start, spacing, reach = self._timelines[entity]
        return datetime.fromtimestamp(int(start + spacing * index + reach * unit(self.keys[entity], index)), UTC)

    def base_stamp(self, entity: str, index: int) -> Stamp:
        return Stamp(created=self.base_created(entity, index), modified=self.base_modified(entity, index))

    def edit_rng(self, entity: str, index: int, version: int) -> random.Random:
        """The random source of what version `version` of a record changes (status, price...)."""
        return rng_for(self.keys[entity] ^ EDIT_SALT, index, version)

    def audit(self, index: int, stamp: Stamp, entity: str) -> dict:
        """Who created and last modified the record, and when (the fields every entity ends with)."""
        users = self.sizes.users
        creator = int(unit(self.keys[entity] ^ 0xC0FFEE, index) * users)
        editor = (creator + stamp.version) % users
        return {
            "created": timestamp(stamp.created),
            "created_by": self.id("users", creator),
            "modified": timestamp(stamp.modified),
            "modified_by": self.id("users", editor),
            "trashed": timestamp(stamp.trashed),
        }


class EntityFamily:
    """The builders of one family of entities, drawing from the shared context."""

    def __init__(self, context: RecordContext) -> None:
        self.sizes = context.sizes
        self.keys = context.keys
        self.id = context.id
        self.audit = context.audit
        self.edit_rng = context.edit_rng
        self.base_stamp = context.base_stamp
