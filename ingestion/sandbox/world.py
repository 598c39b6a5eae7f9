"""The sandbox's state: generated base records plus every change made since it started.

Only changes take memory. Time moves only when `advance` is called, in steps whose
changes (creations, edits, media edits, trash, restore, hard delete) are drawn from
the seed, so the same seed, size and steps always give the same data.
"""

import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Literal

import orjson

from ingestion.sandbox import catalog
from ingestion.sandbox.generators.common import HISTORY_END, Stamp, timestamp
from ingestion.sandbox.generators.entities import ENTITIES, PORTAL_ENTITIES, Sizes
from ingestion.sandbox.generators.registry import Generator
from ingestion.sandbox.identity import rng_for, text_key
from ingestion.sandbox.query import MONOTONE_FIELDS, Materialized, Ordering, base_candidates, sort_value
from ingestion.sandbox.search import SearchError, fields_used, matches, parse

STEP_DURATION = timedelta(minutes=15)
"""Sandbox time that passes with each `advance` step."""
MODEL_NAMES = {
    "properties": "Properties", "agents": "Agents", "users": "Users", "contacts": "Contacts",
    "property-viewings": "PropertyViewings", "meetings": "Meetings", "opportunities": "Opportunities",
    "projects": "Projects", "project-features": "ProjectFeatures", "property-features": "PropertyFeatures",
    "locations": "Locations", "property-types": "PropertyTypes", "property-subtypes": "PropertySubtypes",
    "media/categories": "MediaCategories", "bayut-locations": "BayutLocations",
    "bazaraki-locations": "BazarakiLocations",
    "spitogatos-locations": "SpitogatosLocations", "property-finder-a-e-locations": "PropertyFinderAELocations",
}  # fmt: skip
STAMP_FIELDS = {"id", "ref", "created", "modified", "trashed", "last_media_update"}
NUMERIC_IDS = ("bazaraki-locations", "spitogatos-locations")
MUTABLE = ("properties", "contacts", "property-viewings", "meetings", "opportunities", "projects", "agents", "users")

SkewedChange = Literal["updated", "media_updated", "trashed", "trashed_leaving_modified"]
"""Changes `change_stamped_at` makes. FACTS.md does not say whether Qobrix stamps `modified` when it
trashes a record: the sandbox does, and `trashed_leaving_modified` trashes one as a Qobrix that did not would."""


def _changed(old: Stamp, kind: SkewedChange, when: datetime) -> Stamp:
    """A record's stamp after one change of `kind` made at `when`."""
    if kind == "updated":
        return replace(old, version=old.version + 1, modified=when)
    if kind == "media_updated":
        return replace(old, media_version=old.media_version + 1, last_media_update=when)
    if kind == "trashed":
        return replace(old, trashed=when, modified=when)
    if kind == "trashed_leaving_modified":
        return replace(old, trashed=when)
    raise ValueError(f"unknown change {kind!r}; one of updated, media_updated, trashed, trashed_leaving_modified")


# Expanded associations, as Qobrix names them: (key, reference field, entity); None entity = always null.
EXPANSIONS = {
    "properties": [
        ("PropertyPropertyType", "property_type", "property-types"), ("project_project", "project", "projects"),
        ("seller_contact", "seller", "contacts"), ("location_location", "location", "locations"),
        ("modified_by_user", "modified_by", "users"), ("created_by_user", "created_by", "users"),
        ("salesperson_user", "salesperson", "users"), ("agent_agent", "agent", "agents"),
        ("developer", "developer_id", "contacts"), ("campaign_id_campaign", "campaign_id", None),
        ("group", "group_id", None),
    ],
    "projects": [
        ("developer", "developer_id", "contacts"), ("assignee", "assigned_to", "users"),
        ("location_location", "location", "locations"), ("created_by_user", "created_by", "users"),
        ("modified_by_user", "modified_by", "users"),
    ],
    "contacts": [
        ("contact_id_contact", "contact_id", "contacts"), ("organization", "custom_works_for", "contacts"),
        ("assigned_to_user", "assigned_to", "users"), ("created_by_user", "created_by", "users"),
        ("modified_by_user", "modified_by", "users"), ("group_id_group", "group_id", None), ("group", "group_id", None),
    ],
    "agents": [
        ("primary_contact_contact", "primary_contact", "contacts"), ("owner_user", "owner", "users"),
        ("agency_agent", "agency", "agents"), ("sub_agent_of_agent", "sub_agent_of", "agents"),
        ("created_by_user", "created_by", "users"), ("modified_by_user", "modified_by", "users"),
        ("user", "owner", None),
    ],
    "users": [("contact", "contact_id", "contacts")],
    "opportunities": [("contact_name_contact", "contact_name", "contacts")],
    "media/categories": [("created_by_user", "created_by", "users"), ("modified_by_user", "modified_by", "users")],
}  # fmt: skip


class NotFound(LookupError):
    """No such record (or category, or resource) in the sandbox."""


@dataclass
class Changes:
    """What one `advance` step does to one entity."""

    creates: int = 0
    updates: int = 0
    media_updates: int = 0
    trashes: int = 0
    restores: int = 0
    deletes: int = 0


def default_changes(sizes: Sizes) -> dict[str, Changes]:
    """A busy quarter hour at a brokerage of this size."""
    n = sizes.properties
    return {
        "properties": Changes(
            creates=max(1, n // 2000), updates=max(2, n // 200), media_updates=max(1, n // 1000),
            trashes=max(1, n // 5000), restores=1, deletes=max(1, n // 10000),
        ),
        "contacts": Changes(creates=max(1, n // 2000), updates=max(1, n // 1000)),
        "property-viewings": Changes(creates=max(1, n // 1000), updates=max(1, n // 2000)),
        "meetings": Changes(updates=max(1, n // 2000)),
        "opportunities": Changes(creates=max(1, n // 2000), updates=max(1, n // 1000), trashes=1),
        "projects": Changes(updates=1, media_updates=1),
        "agents": Changes(updates=1),
        "users": Changes(updates=1),
    }  # fmt: skip


@dataclass
class AdvanceReport:
    step: int
    clock: datetime
    changed: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def ids(self, entity: str, kind: str) -> list[str]:
        return self.changed.get(entity, {}).get(kind, [])


class EntityState:
    """Changes to one entity: stamps of touched records, hard deletes, how many were created."""

    def __init__(self, base_count: int) -> None:
        self.base_count = base_count
        self.created = 0
        self.stamps: dict[int, Stamp] = {}
        self.deleted: set[int] = set()
        self._specials: list[int] | None = None

    @property
    def total(self) -> int:
        return self.base_count + self.created

    def specials(self) -> list[int]:
        """Base indices that are no longer untouched (edited, trashed, restored or deleted), sorted."""
        if self._specials is None:
            self._specials = sorted(i for i in {*self.stamps, *self.deleted} if i < self.base_count)
        return self._specials

    def touched(self) -> list[int]:
        """Every live index that differs from its base: touched base records and created ones."""
        return sorted(i for i in self.stamps if i not in self.deleted)

    def changed(self) -> None:
        self._specials = None


class SandboxWorld:
    """Every record the sandbox serves, deterministic from (seed, size, steps advanced)."""

    def __init__(self, *, seed: int, properties: int) -> None:
        if properties < 1:
            raise ValueError(f"properties must be >= 1, got {properties}")
        self.seed = seed
        self.sizes = Sizes(properties)
        self.generator = Generator(seed, self.sizes)
        self.states = {entity: EntityState(self.sizes.count(entity)) for entity in ENTITIES}
        self.step = 0
        self.clock = HISTORY_END
        self.version = 0
        self.last_report: AdvanceReport | None = None
        self._lock = threading.RLock()
        self._orderings: OrderedDict = OrderedDict()
        self._fields = {entity: frozenset(self._sample(entity)) for entity in ENTITIES}
        self._type_index = {code: i for i, (code, _, _) in enumerate(catalog.PROPERTY_TYPES)}

    @property
    def property_count(self) -> int:
        return self.live_count("properties")

    def _sample(self, entity: str) -> dict:
        return self.generator.record(entity, 0, self.generator.base_stamp(entity, 0))

    def fields(self, entity: str) -> frozenset[str]:
        return self._fields[entity]

    # --- single records ---------------------------------------------------------------------
    def stamp(self, entity: str, index: int) -> Stamp:
        return self.states[entity].stamps.get(index) or self.generator.base_stamp(entity, index)

    def exists(self, entity: str, index: int) -> bool:
        state = self.states[entity]
        return 0 <= index < state.total and index not in state.deleted

    def is_trashed(self, entity: str, index: int) -> bool:
        stamp = self.states[entity].stamps.get(index)
        return stamp is not None and stamp.trashed is not None

    def record(self, entity: str, index: int) -> dict:
        """The record as listed with `expand=false&media=false`."""
        return self.generator.record(entity, index, self.stamp(entity, index))

    def index_of(self, entity: str, record_id: str) -> int | None:
        if entity in NUMERIC_IDS:
            index = int(record_id) - 1000 if str(record_id).isdigit() else None
        else:
            index = self.generator.index_of(entity, record_id)
        return index if index is not None and self.exists(entity, index) else None

    def get(
        self, entity: str, record_id: str, *, trashed: bool = False, expand: bool = True, media: bool = True
    ) -> dict:
        with self._lock:
            index = self.index_of(entity, record_id)
            if index is None or self.is_trashed(entity, index) != trashed:
                raise NotFound(f"{MODEL_NAMES[entity]} record {record_id} not found")
            return self.present(entity, index, expand=expand, media=media)

    def present(self, entity: str, index: int, *, expand: bool, media: bool) -> dict:
        """A record as a list or read endpoint returns it, with expansions and inline media on request."""
        record = self.record(entity, index)
        if expand:
            for key, reference, related in EXPANSIONS.get(entity, ()):
                record[key] = self._related(related, record.get(reference))
        if media:
            record["media"] = self.inline_media(entity, index, record) if entity in ("properties", "projects") else []
        return record

    def _related(self, entity: str | None, reference: str | None) -> dict | None:
        """The referenced record as an expansion embeds it (shared, cached: never mutate it)."""
        if entity is None or reference is None:
            return None
        if entity == "property-types":
            return self.generator.lookup_record(entity, self._type_index[reference])
        index = self._decode(entity, reference)
        if index is None or not self.exists(entity, index):
            return None
        return self._cached_record(entity, index, self.states[entity].stamps.get(index))

    @lru_cache(maxsize=100_000)
    def _decode(self, entity: str, reference: str) -> int | None:
        return self.generator.index_of(entity, reference)

    @lru_cache(maxsize=50_000)
    def _cached_record(self, entity: str, index: int, touched: Stamp | None) -> dict:
        """A related record; `touched` is its stamp when changed since the start, else None."""
        return self.generator.record(entity, index, touched or self.generator.base_stamp(entity, index))

    @lru_cache(maxsize=4096)
    def _project_photos(self, project: int, stamp: Stamp) -> list[dict]:
        return self.generator.media.items("projects", project, stamp, "photos")

    # --- media ------------------------------------------------------------------------------
    def inline_media(self, entity: str, index: int, record: dict) -> list[dict]:
        return [
            item for category in catalog.MEDIA_CATEGORY_NAMES for item in self.media(entity, index, category, record)
        ]

    def media(self, entity: str, index: int, category: str, record: dict | None = None) -> list[dict]:
        """Media of one category; a property's photos include its project's when it inherits them."""
        items = self.generator.media.items(entity, index, self.stamp(entity, index), category)
        if entity == "properties" and category == "photos":
            record = record or self.record(entity, index)
            project = self.index_of("projects", record["project"]) if record["project"] else None
            if record["inherit_project_media"] and project is not None:
                items = items + self._project_photos(project, self.stamp("projects", project))
        return items

    def media_by_category(self, category: str, resource: str, record_id: str) -> list[dict]:
        entity = {"properties": "properties", "projects": "projects"}.get(resource.lower())
        if entity is None:
            raise NotFound(f"resource {resource} has no media here; use Properties or Projects")
        if category not in catalog.MEDIA_CATEGORY_NAMES:
            raise NotFound(f"media category {category} not found")
        with self._lock:
            index = self.index_of(entity, record_id)
            if index is None or self.is_trashed(entity, index):
                raise NotFound(f"{MODEL_NAMES[entity]} record {record_id} not found")
            return self.media(entity, index, category)

    def snapshot(self) -> threading.RLock:
        """Hold while choosing a page and rendering it: no change lands between the two, as in a database."""
        return self._lock

    # --- lists ------------------------------------------------------------------------------
    def list_records(
        self,
        entity: str,
        *,
        page: int = 1,
        limit: int = 10,
        search: str | None = None,
        sort: tuple[str, ...] = (),
        trashed: bool = False,
        expand: bool = True,
        media: bool = True,
    ) -> tuple[list[dict], int]:
        """One page of a list endpoint and the total count; raises SearchError on a bad expression."""
        with self._lock:
            indices, count = self.list_indices(
                entity, page=page, limit=limit, search=search, sort=sort, trashed=trashed
            )
            return [self.present(entity, i, expand=expand, media=media) for i in indices], count

    def list_indices(
        self, entity: str, *, page: int, limit: int, search: str | None, sort: tuple[str, ...], trashed: bool
    ) -> tuple[list[int], int]:
        """The indices on one page of a list and the total count."""
        with self._lock:
            ordering = self._ordering(entity, search, sort, trashed)
            return ordering.page((page - 1) * limit, limit), ordering.count

    def render(self, entity: str, index: int, *, expand: bool, media: bool) -> bytes:
        """`present(...)` as JSON, spliced from cached pieces: the server's fast path."""
        stamp = self.stamp(entity, index)
        if entity == "properties":
            members, fields = self.generator.listings.render(index, stamp)
        else:
            fields = self.generator.record(entity, index, stamp)
            members = orjson.dumps(fields)[1:-1]
        parts = [members]
        if expand:
            for key, reference, related in EXPANSIONS.get(entity, ()):
                parts.append(b'"' + key.encode() + b'":' + self._related_json(related, fields.get(reference)))
        if media:
            parts.append(
                b'"media":'
                + (self._media_json(entity, index, fields) if entity in ("properties", "projects") else b"[]")
            )
        return b"{" + b",".join(parts) + b"}"

    def _related_json(self, entity: str | None, reference: str | None) -> bytes:
        if entity is None or reference is None:
            return b"null"
        if entity == "property-types":
            return self._lookup_json(entity, self._type_index[reference])
        index = self._decode(entity, reference)
        if index is None or not self.exists(entity, index):
            return b"null"
        return self._cached_json(entity, index, self.states[entity].stamps.get(index))

    @lru_cache(maxsize=50_000)
    def _cached_json(self, entity: str, index: int, touched: Stamp | None) -> bytes:
        return orjson.dumps(self._cached_record(entity, index, touched))

    @lru_cache(maxsize=1024)
    def _lookup_json(self, entity: str, index: int) -> bytes:
        return orjson.dumps(self.generator.lookup_record(entity, index))

    def _media_json(self, entity: str, index: int, fields: dict) -> bytes:
        stamp = self.stamp(entity, index)
        parts = [
            self.generator.media.items_json(entity, index, stamp, category) for category in catalog.MEDIA_CATEGORY_NAMES
        ]
        if entity == "properties" and fields.get("project") and fields.get("inherit_project_media"):
            project = self._decode("projects", fields["project"])
            if project is not None and self.exists("projects", project):
                parts.insert(1, self._project_photos_json(project, self.states["projects"].stamps.get(project)))
        return b"[" + b",".join(part for part in parts if part) + b"]"

    @lru_cache(maxsize=4096)
    def _project_photos_json(self, project: int, touched: Stamp | None) -> bytes:
        return orjson.dumps(self._project_photos(project, touched or self.generator.base_stamp("projects", project)))[
            1:-1
        ]

    def _ordering(self, entity: str, search: str | None, sort: tuple[str, ...], trashed: bool):
        key = (entity, search, sort, trashed, self.version)
        if key in self._orderings:
            self._orderings.move_to_end(key)
            return self._orderings[key]
        ordering = self._build_ordering(entity, search, sort, trashed)
        self._orderings[key] = ordering
        if len(self._orderings) > 32:
            self._orderings.popitem(last=False)
        return ordering

    def _build_ordering(self, entity: str, search: str | None, sort: tuple[str, ...], trashed: bool):
        fields = self.fields(entity)
        tree = parse(search, MODEL_NAMES[entity], fields) if search else None
        sort_field, descending = self._sort_spec(entity, sort)
        state = self.states[entity]
        decode = lambda record_id: self.generator.index_of(entity, record_id)  # noqa: E731
        candidates = (
            base_candidates(tree, state.base_count, self._base_key(entity), decode) if tree is not None else None
        )
        ranges = [] if trashed else (candidates.ranges if candidates else [(0, state.base_count)])
        exact = candidates is None or candidates.exact
        light = tree is None or fields_used(tree) <= STAMP_FIELDS

        def listed(index: int) -> bool:
            return self.is_trashed(entity, index) == trashed and (
                tree is None or matches(tree, self._light(entity, index) if light else self.record(entity, index))
            )

        monotone = sort_field in (None, *MONOTONE_FIELDS) and (sort_field is None or sort_field in fields)
        if exact and monotone and len(sort) <= 1:
            extras = [(self._sort_key(entity, sort_field, i), i) for i in state.touched() if listed(i)]
            return Ordering(
                ranges,
                state.specials(),
                extras,
                lambda i: (self._base_sort_key(entity, sort_field, i), i),
                descending=descending,
            )
        specials = set(state.specials())
        dense = (i for low, high in ranges for i in range(low, high) if i not in specials)
        chosen = [i for i in dense if tree is None or exact or matches(tree, self.record(entity, i))]
        chosen += [i for i in state.touched() if listed(i)]
        chosen.sort(key=lambda i: self._generic_key(entity, sort, i))
        return Materialized(chosen)

    def _sort_spec(self, entity: str, sort: tuple[str, ...]) -> tuple[str | None, bool]:
        for item in sort:
            name = item.lstrip("-")
            if name not in self.fields(entity):
                raise SearchError(f"cannot sort {MODEL_NAMES[entity]} by unknown field {name!r}")
        if not sort:
            return None, False
        return sort[0].lstrip("-"), sort[0].startswith("-")

    def _base_key(self, entity: str):
        def key(field_name: str, index: int) -> object:
            if field_name == "ref":
                return index + 1
            if field_name in ("created", "last_media_update"):
                return self.generator.base_created(entity, index)
            return self.generator.base_modified(entity, index)

        return key

    def _base_sort_key(self, entity: str, field_name: str | None, index: int) -> object:
        return index if field_name is None else self._base_key(entity)(field_name, index)

    def _sort_key(self, entity: str, field_name: str | None, index: int) -> object:
        if field_name is None:
            return index
        if field_name == "ref":
            return index + 1
        stamp = self.stamp(entity, index)
        if field_name == "last_media_update":
            return stamp.last_media_update or stamp.created
        return stamp.created if field_name == "created" else stamp.modified

    def _generic_key(self, entity: str, sort: tuple[str, ...], index: int) -> tuple:
        if not sort:
            return (index,)
        record = self.record(entity, index)
        parts = []
        for item in sort:
            value = sort_value(record.get(item.lstrip("-")))
            parts.append(_Reversed(value) if item.startswith("-") else value)
        return (*parts, index)

    def _light(self, entity: str, index: int) -> dict:
        stamp = self.stamp(entity, index)
        return {
            "id": self.generator.id(entity, index),
            "ref": index + 1,
            "created": timestamp(stamp.created),
            "modified": timestamp(stamp.modified),
            "trashed": timestamp(stamp.trashed),
            "last_media_update": timestamp(stamp.last_media_update or stamp.created),
        }

    def live_count(self, entity: str) -> int:
        state = self.states[entity]
        return state.total - len(state.deleted) - sum(1 for s in state.stamps.values() if s.trashed)

    def live_ids(self, entity: str, *, trashed: bool = False) -> set[str]:
        """Ids of every listed (or trashed) record: what a complete sync must land."""
        state = self.states[entity]
        if entity in NUMERIC_IDS:
            return {str(1000 + i) for i in range(state.total)}
        return {
            self.generator.id(entity, i)
            for i in range(state.total)
            if i not in state.deleted and self.is_trashed(entity, i) == trashed
        }

    # --- change over time -------------------------------------------------------------------
    def advance(self, *, steps: int = 1, changes: dict[str, Changes] | None = None) -> AdvanceReport:
        """Move sandbox time forward; each step applies `changes` (default: a busy quarter hour)."""
        for _ in range(steps):
            self.last_report = self._advance_once(changes or default_changes(self.sizes))
        return self.last_report

    def _advance_once(self, changes: dict[str, Changes]) -> AdvanceReport:
        with self._lock:
            self.step += 1
            start = self.clock
            self.clock += STEP_DURATION
            report = AdvanceReport(step=self.step, clock=self.clock)
            rng = rng_for(text_key(self.seed, "advance"), self.step)
            tick = 0

            def moment() -> datetime:
                nonlocal tick
                tick += 1
                return start + timedelta(seconds=20 * (tick // 3 + 1))  # a few changes share each second

            for entity in MUTABLE:
                change = changes.get(entity)
                if change is None or entity in PORTAL_ENTITIES:
                    continue
                report.changed[entity] = self._apply(entity, change, rng, moment)
            self.version += 1
            return report

    def change_stamped_at(self, entity: str, record_id: str, kind: SkewedChange, when: datetime) -> None:
        """One change to a live record, stamped `when` whatever the sandbox clock says: a Qobrix node
        whose clock lags stamps an edit behind records a client may already have read."""
        with self._lock:
            index = self.index_of(entity, record_id)
            if index is None or self.is_trashed(entity, index):
                raise NotFound(f"{MODEL_NAMES[entity]} record {record_id} not found")
            state = self.states[entity]
            state.stamps[index] = _changed(self.stamp(entity, index), kind, when)
            state.changed()
            self.version += 1

    def _pick(self, entity: str, rng, count: int, *, trashed: bool, allow=lambda i: True) -> list[int]:
        state = self.states[entity]
        if trashed:
            pool = sorted(i for i, s in state.stamps.items() if s.trashed and i not in state.deleted)
            return rng.sample(pool, min(count, len(pool)))
        chosen: set[int] = set()
        for _ in range(count * 20):
            if len(chosen) >= count or state.total == 0:
                break
            index = rng.randrange(state.total)
            if self.exists(entity, index) and not self.is_trashed(entity, index) and allow(index):
                chosen.add(index)
        return sorted(chosen)

    def _apply(self, entity: str, change: Changes, rng, moment) -> dict[str, list[str]]:
        state = self.states[entity]
        done: dict[str, list[str]] = {}

        def mark(kind: str, index: int) -> None:
            done.setdefault(kind, []).append(self.generator.id(entity, index))

        for _ in range(change.creates):
            when = moment()
            if entity == "property-viewings":
                meetings = self.states["meetings"]
                meetings.stamps[meetings.total] = Stamp(created=when, modified=when)
                meetings.created += 1
            index = state.total
            state.created += 1
            state.stamps[index] = Stamp(created=when, modified=when)
            mark("created", index)
        for index in self._pick(entity, rng, change.updates, trashed=False):
            state.stamps[index] = _changed(self.stamp(entity, index), "updated", moment())
            mark("updated", index)
        for index in self._pick(entity, rng, change.media_updates, trashed=False):
            state.stamps[index] = _changed(self.stamp(entity, index), "media_updated", moment())
            mark("media_updated", index)
        for index in self._pick(entity, rng, change.restores, trashed=True):
            old = self.stamp(entity, index)
            state.stamps[index] = replace(old, trashed=None, modified=moment())
            mark("restored", index)
        for index in self._pick(entity, rng, change.trashes, trashed=False):
            state.stamps[index] = _changed(self.stamp(entity, index), "trashed", moment())
            mark("trashed", index)
        deletable = (lambda i: i % 3 != 0) if entity == "properties" else (lambda i: entity != "property-viewings")
        for index in self._pick(entity, rng, change.deletes, trashed=False, allow=deletable):
            state.deleted.add(index)
            mark("deleted", index)
        state.changed()
        self.states["meetings"].changed()
        return done


class _Reversed:
    """Sorts its value in reverse (for `-field` sort keys)."""

    def __init__(self, value: object) -> None:
        self.value = value

    def __lt__(self, other: "_Reversed") -> bool:
        return other.value < self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and other.value == self.value
