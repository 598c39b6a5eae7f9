"""The entities the sandbox serves and how many records of each a sandbox of a given size holds."""

from dataclasses import dataclass
from functools import cached_property

from ingestion.sandbox import catalog
from ingestion.sandbox.identity import unit

ENTITIES = (
    "properties", "agents", "users", "contacts", "property-viewings", "meetings", "opportunities", "projects",
    "project-features", "property-features", "locations", "property-types", "property-subtypes", "media/categories",
    "bayut-locations", "bazaraki-locations", "spitogatos-locations", "property-finder-a-e-locations",
)  # fmt: skip
ACTIVE_ENTITIES = (
    "properties",
    "agents",
    "users",
    "contacts",
    "property-viewings",
    "meetings",
    "opportunities",
    "projects",
)
"""Entities whose records are created and edited throughout the history (the rest are lookups)."""
PORTAL_ENTITIES = ("bayut-locations", "bazaraki-locations", "spitogatos-locations", "property-finder-a-e-locations")
"""Portal lookups carry no timestamps: they cannot be filtered by `modified`."""

SUBTYPES = [(code, label, type_code) for type_code, rows in catalog.PROPERTY_SUBTYPES.items() for code, label in rows]
PROPERTY_FEATURE_ROWS = [
    (field, code, label) for field, rows in catalog.PROPERTY_FEATURES.items() for code, label in rows
]
PROJECT_FEATURE_ROWS = [
    (field, code, label) for field, rows in catalog.PROJECT_FEATURES.items() for code, label in rows
]


@dataclass(frozen=True)
class Sizes:
    """How many records of each entity a sandbox of `properties` properties holds, and their blocks."""

    properties: int

    @property
    def agents(self) -> int:
        return max(4, self.properties // 200)

    @property
    def agencies(self) -> int:
        """The first agents are agencies (offices); the rest are individual agents of one of them."""
        return max(1, self.agents // 5)

    @property
    def users(self) -> int:
        return max(4, self.properties // 150)

    @property
    def developers(self) -> int:
        return max(2, self.properties // 120)

    @property
    def clients(self) -> int:
        return max(10, self.properties // 2)

    @property
    def contacts(self) -> int:
        """Contact blocks: agents' primary contacts, users' contacts, developers, then clients."""
        return self.agents + self.users + self.developers + self.clients

    @property
    def projects(self) -> int:
        return max(2, self.properties // 40)

    @property
    def viewings(self) -> int:
        return self.properties // 2

    @property
    def meetings(self) -> int:
        """The first `viewings` meetings are the viewings' meetings; the rest are other appointments."""
        return self.viewings + self.viewings // 4

    @property
    def opportunities(self) -> int:
        return max(5, self.properties // 4)

    def count(self, entity: str) -> int:
        """Base records of `entity` (before any created by `advance`)."""
        return self.counts[entity]

    @cached_property
    def counts(self) -> dict[str, int]:
        """Per entity: lookups hold one record per catalog row; the rest scale with the properties."""
        return {
            "project-features": len(PROJECT_FEATURE_ROWS),
            "property-features": len(PROPERTY_FEATURE_ROWS),
            "locations": len(catalog.LOCATIONS),
            "property-types": len(catalog.PROPERTY_TYPES),
            "property-subtypes": len(SUBTYPES),
            "media/categories": len(catalog.MEDIA_CATEGORIES),
            "bayut-locations": len(catalog.BAYUT_HIERARCHIES),
            "bazaraki-locations": len(catalog.LOCATIONS) - 12,
            "spitogatos-locations": 12,
            "property-finder-a-e-locations": len(catalog.PROPERTY_FINDER_AE_NAMES),
            "properties": self.properties,
            "agents": self.agents,
            "users": self.users,
            "contacts": self.contacts,
            "property-viewings": self.viewings,
            "meetings": self.meetings,
            "opportunities": self.opportunities,
            "projects": self.projects,
        }

    def meeting_of_viewing(self, viewing: int) -> int:
        """Each viewing has its own meeting; viewings created later get meetings created with them."""
        return viewing if viewing < self.viewings else self.meetings + (viewing - self.viewings)

    def viewing_of_meeting(self, meeting: int) -> int | None:
        if meeting < self.viewings:
            return meeting
        if meeting >= self.meetings:
            return self.viewings + (meeting - self.meetings)
        return None

    def client_contact(self, n: int) -> int:
        return self.agents + self.users + self.developers + n % self.clients

    def developer_contact(self, n: int) -> int:
        return self.agents + self.users + n % self.developers

    def viewed_property(self, viewing: int) -> int:
        """Viewings go to every third property (the others can be hard-deleted without orphaning one)."""
        return 3 * (int(unit(0x5EED, viewing) * 2**32) % max(1, -(-self.properties // 3)))
