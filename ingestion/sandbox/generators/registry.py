"""The registry: which family builds each entity's records, and the one entry point that dispatches to it."""

from collections.abc import Callable
from functools import lru_cache

from ingestion.sandbox.generators.activity import ActivityGenerator
from ingestion.sandbox.generators.common import Stamp
from ingestion.sandbox.generators.context import RecordContext
from ingestion.sandbox.generators.entities import Sizes
from ingestion.sandbox.generators.listings import ListingGenerator
from ingestion.sandbox.generators.media import MediaGenerator
from ingestion.sandbox.generators.people import PeopleGenerator
from ingestion.sandbox.generators.projects import ProjectGenerator
from ingestion.sandbox.generators.reference import ReferenceGenerator

RecordBuilder = Callable[[int, Stamp], dict]
"""Builds record `index` of one entity in the state `stamp` describes."""


class Generator(RecordContext):
    """Every entity's records (and the media of properties and projects) for one (seed, sizes)."""

    def __init__(self, seed: int, sizes: Sizes) -> None:
        super().__init__(seed, sizes)
        self.reference = ReferenceGenerator(self)
        self.projects = ProjectGenerator(self)
        self.listings = ListingGenerator(self, self.projects)
        self.people = PeopleGenerator(self)
        self.activity = ActivityGenerator(self)
        self.media = MediaGenerator(self, self.reference)
        self.builders: dict[str, RecordBuilder] = {
            "properties": self.listings.record,
            "agents": self.people.agent,
            "users": self.people.user,
            "contacts": self.people.contact,
            "property-viewings": self.activity.viewing,
            "meetings": self.activity.meeting,
            "opportunities": self.activity.opportunity,
            "projects": self.projects.record,
            "project-features": self.reference.project_feature,
            "property-features": self.reference.property_feature,
            "locations": self.reference.location,
            "property-types": self.reference.property_type,
            "property-subtypes": self.reference.property_subtype,
            "media/categories": self.reference.media_category,
            "bayut-locations": self.reference.bayut_location,
            "bazaraki-locations": self.reference.bazaraki_location,
            "spitogatos-locations": self.reference.spitogatos_location,
            "property-finder-a-e-locations": self.reference.property_finder_location,
        }

    def record(self, entity: str, index: int, stamp: Stamp) -> dict:
        """Record `index` as a Qobrix list returns it with `expand=false&media=false`."""
        return self.builders[entity](index, stamp)

    @lru_cache(maxsize=4096)
    def lookup_record(self, entity: str, index: int) -> dict:
        """Lookup records never change: generate each once."""
        return self.record(entity, index, self.base_stamp(entity, index))
