"""What the API serves, from the mapping files: entity sets, their typed fields, keys and navigation.

OData `$metadata`, the query compiler and GraphQL read this one model, so a field added to a
mapping file is served, described and filterable everywhere at once.
"""

from dataclasses import dataclass
from functools import cache

from conf.mappings import LOOKUP_TABLE, FieldMapping, Navigation, resource_mappings

NAMESPACE = "org.reso.metadata"


@dataclass(frozen=True)
class EntitySet:
    name: str
    table: str
    """Qualified gold table (`reso_gold.property`); the snapshot holds it by its bare name."""
    key: str
    fields: dict[str, FieldMapping]
    navigation: dict[str, Navigation]
    description: str = ""

    @property
    def table_name(self) -> str:
        return self.table.split(".", 1)[1]

    @property
    def timestamp_field(self) -> str | None:
        return "ModificationTimestamp" if "ModificationTimestamp" in self.fields else None


LOOKUP = EntitySet(
    name="Lookup",
    table=LOOKUP_TABLE,
    key="LookupKey",
    fields={
        name: FieldMapping(name=name, type=kind, max_length=length)
        for name, kind, length in (
            # DD 2.0 suggests no lengths here: a value is at most its field's 1,024, and a key is
            # the lookup's name, a colon and the value.
            ("LookupKey", "Edm.String", 1100),
            ("LookupName", "Edm.String", 64),
            ("LookupValue", "Edm.String", 1024),
            ("StandardLookupValue", "Edm.String", 1024),
            ("LegacyODataValue", "Edm.String", 1024),
            ("ModificationTimestamp", "Edm.DateTimeOffset", None),
        )
    },
    navigation={},
    description="Every value of every lookup the resources use: the standard display name, the legacy "
    "OData name, and local values of open lookups.",
)


@cache
def entity_sets() -> dict[str, EntitySet]:
    """Every served entity set by name: the RESO resources of the mapping files, then Lookup."""
    served = {
        mapping.resource: EntitySet(
            name=mapping.resource,
            table=mapping.table,
            key=mapping.key,
            fields={f.name: f for f in mapping.fields},
            navigation={link.name: link for link in mapping.navigation},
            description=mapping.description,
        )
        for mapping in resource_mappings().values()
    }
    return {**served, LOOKUP.name: LOOKUP}
