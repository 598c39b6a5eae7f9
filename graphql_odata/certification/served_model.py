"""What a server says it serves: its `$metadata` (CSDL XML) read into entity sets, fields and links."""

from dataclasses import dataclass, field

from lxml import etree

EDM = "http://docs.oasis-open.org/odata/ns/edm"
LOOKUP_NAME_TERM = "RESO.OData.Metadata.LookupName"


@dataclass(frozen=True)
class ServedField:
    name: str
    type: str
    """As declared: `Edm.String`, `Collection(Edm.String)`, a qualified enum type, ..."""
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    nullable: bool = True
    lookup_name: str | None = None
    """The `RESO.OData.Metadata.LookupName` annotation, if any."""

    @property
    def is_collection(self) -> bool:
        return self.type.startswith("Collection(")

    @property
    def element_type(self) -> str:
        return self.type.removeprefix("Collection(").removesuffix(")")


@dataclass(frozen=True)
class ServedLink:
    name: str
    target: str
    """The entity type's bare name."""
    many: bool


@dataclass
class ServedEntity:
    name: str
    """The entity set's name (the resource)."""
    key: tuple[str, ...]
    fields: dict[str, ServedField] = field(default_factory=dict)
    links: dict[str, ServedLink] = field(default_factory=dict)


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def read_metadata(document: bytes) -> dict[str, ServedEntity]:
    """Entity sets by name. Raises `ValueError` when the document is not XML or has no entity container."""
    try:
        root = etree.fromstring(document)
    except etree.XMLSyntaxError as error:
        raise ValueError(f"$metadata is not XML: {error}") from None
    ns = {"edm": EDM}
    types: dict[str, ServedEntity] = {}
    for schema in root.iterfind(".//edm:Schema", ns):
        namespace = schema.get("Namespace", "")
        for entity_type in schema.iterfind("edm:EntityType", ns):
            name = entity_type.get("Name", "")
            entity = ServedEntity(
                name, tuple(ref.get("Name", "") for ref in entity_type.iterfind("edm:Key/edm:PropertyRef", ns))
            )
            for prop in entity_type.iterfind("edm:Property", ns):
                annotation = prop.find(f"edm:Annotation[@Term='{LOOKUP_NAME_TERM}']", ns)
                entity.fields[prop.get("Name", "")] = ServedField(
                    name=prop.get("Name", ""),
                    type=prop.get("Type", ""),
                    max_length=_int(prop.get("MaxLength")),
                    precision=_int(prop.get("Precision")),
                    scale=_int(prop.get("Scale")),
                    nullable=prop.get("Nullable", "true") != "false",
                    lookup_name=annotation.get("String") if annotation is not None else None,
                )
            for link in entity_type.iterfind("edm:NavigationProperty", ns):
                target = link.get("Type", "")
                many = target.startswith("Collection(")
                target = target.removeprefix("Collection(").removesuffix(")").rsplit(".", 1)[-1]
                entity.links[link.get("Name", "")] = ServedLink(link.get("Name", ""), target, many)
            types[f"{namespace}.{name}"] = entity
    sets: dict[str, ServedEntity] = {}
    containers = root.findall(".//edm:EntityContainer", ns)
    if not containers:
        raise ValueError("$metadata has no EntityContainer")
    for container in containers:
        for entity_set in container.iterfind("edm:EntitySet", ns):
            entity = types.get(entity_set.get("EntityType", ""))
            if entity is not None:
                sets[entity_set.get("Name", "")] = ServedEntity(
                    entity_set.get("Name", ""), entity.key, entity.fields, entity.links
                )
    return sets
