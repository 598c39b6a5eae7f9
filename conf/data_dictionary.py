"""RESO Data Dictionary 2.0, all of it: every resource's fields and every lookup's values.

`conf/reso_dd_2_0.json` is generated from RESO's `dd-2.0.json` by `tests/contracts/extract.py`.
The mappings read it for lookup values and suggested lengths, the metadata generator for
`MaxLength`, and `mls2 reso check` to judge any RESO server against the Dictionary.
"""

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import orjson

DATA_DICTIONARY = Path(__file__).with_name("reso_dd_2_0.json")
ENUM_PREFIX = "org.reso.metadata.enums."


@dataclass(frozen=True)
class StandardField:
    """A field as DD 2.0 defines it."""

    resource: str
    name: str
    type: str
    """An Edm type, or `org.reso.metadata.enums.<Lookup>` for a lookup field."""
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    lookup_status: str | None = None
    """"Locked with Enumerations", "Open with Enumerations" or "Open" for a lookup field."""
    type_name: str | None = None
    """The resource an expansion (navigation property) leads to."""
    is_collection: bool = False
    is_expansion: bool = False
    synonyms: tuple[str, ...] = ()

    @property
    def lookup(self) -> str | None:
        return self.type.removeprefix(ENUM_PREFIX) if self.type.startswith(ENUM_PREFIX) else None


@dataclass(frozen=True)
class DataDictionary:
    version: str
    generated_on: str
    resources: dict[str, dict[str, StandardField]]
    lookups: dict[str, dict[str, str]]
    """Lookup name -> legacy OData value -> standard value; open lookups with no values map to {}."""

    def field(self, resource: str, name: str) -> StandardField | None:
        return self.resources.get(resource, {}).get(name)


@cache
def data_dictionary() -> DataDictionary:
    document = orjson.loads(DATA_DICTIONARY.read_bytes())
    resources = {
        resource: {
            name: StandardField(
                resource=resource,
                name=name,
                type=spec["type"],
                max_length=spec.get("maxLength"),
                precision=spec.get("precision"),
                scale=spec.get("scale"),
                lookup_status=spec.get("lookupStatus"),
                type_name=spec.get("typeName"),
                is_collection=spec.get("isCollection", False),
                is_expansion=spec.get("isExpansion", False),
                synonyms=tuple(spec.get("synonyms", ())),
            )
            for name, spec in fields.items()
        }
        for resource, fields in document["resources"].items()
    }
    named = {f.lookup for fields in resources.values() for f in fields.values() if f.lookup}
    lookups = {name: {} for name in sorted(named)} | document["lookups"]
    return DataDictionary(document["version"], document["generated_on"], resources, lookups)
