"""`$metadata`: the entity model as OData CSDL, XML and JSON, in RESO's string-lookup flavour.

Lookup fields are `Edm.String` (or `Collection(Edm.String)`) annotated with
`RESO.OData.Metadata.LookupName`; their values are listed by the Lookup resource.
"""

from functools import cache

import orjson
from lxml import etree

from conf.mappings import FieldMapping
from graphql_odata.schema import NAMESPACE, EntitySet, entity_sets

EDMX = "http://docs.oasis-open.org/odata/ns/edmx"
EDM = "http://docs.oasis-open.org/odata/ns/edm"
CONTAINER = "Default"
LOOKUP_NAME_TERM = "RESO.OData.Metadata.LookupName"
DEFAULT_DECIMAL = (18, 2)


def _facets(field: FieldMapping, *, key: bool) -> dict[str, str]:
    facets = {"Name": field.name, "Type": field.type}
    if key or field.is_collection:
        facets["Nullable"] = "false"
    if field.type == "Edm.Decimal":
        precision, scale = field.precision or DEFAULT_DECIMAL[0], field.scale
        facets["Precision"], facets["Scale"] = str(precision), str(DEFAULT_DECIMAL[1] if scale is None else scale)
    if field.max_length is not None:
        facets["MaxLength"] = str(field.max_length)
    return facets


@cache
def metadata_xml() -> bytes:
    root = etree.Element(f"{{{EDMX}}}Edmx", {"Version": "4.0"}, nsmap={"edmx": EDMX})
    services = etree.SubElement(root, f"{{{EDMX}}}DataServices")
    schema = etree.SubElement(services, f"{{{EDM}}}Schema", {"Namespace": NAMESPACE}, nsmap={None: EDM})
    sets = entity_sets()
    for entity in sets.values():
        entity_type = etree.SubElement(schema, f"{{{EDM}}}EntityType", {"Name": entity.name})
        key = etree.SubElement(entity_type, f"{{{EDM}}}Key")
        etree.SubElement(key, f"{{{EDM}}}PropertyRef", {"Name": entity.key})
        for field in entity.fields.values():
            element = etree.SubElement(entity_type, f"{{{EDM}}}Property", _facets(field, key=field.name == entity.key))
            if field.lookup:
                etree.SubElement(element, f"{{{EDM}}}Annotation", {"Term": LOOKUP_NAME_TERM, "String": field.lookup})
        for link in entity.navigation.values():
            target = f"{NAMESPACE}.{link.resource}"
            etree.SubElement(
                entity_type,
                f"{{{EDM}}}NavigationProperty",
                {"Name": link.name, "Type": f"Collection({target})" if link.many else target},
            )
    container = etree.SubElement(schema, f"{{{EDM}}}EntityContainer", {"Name": CONTAINER})
    for entity in sets.values():
        entity_set = etree.SubElement(
            container, f"{{{EDM}}}EntitySet", {"Name": entity.name, "EntityType": f"{NAMESPACE}.{entity.name}"}
        )
        for link in entity.navigation.values():
            etree.SubElement(
                entity_set, f"{{{EDM}}}NavigationPropertyBinding", {"Path": link.name, "Target": link.resource}
            )
    return etree.tostring(root, encoding="utf-8", xml_declaration=True, pretty_print=True)


def _json_property(field: FieldMapping, entity: EntitySet) -> dict:
    facets = _facets(field, key=field.name == entity.key)
    described: dict[str, object] = {"$Type": "Edm.String" if field.is_collection else facets["Type"]}
    if field.is_collection:
        described["$Collection"] = True
    if facets.get("Nullable") == "false":
        described["$Nullable"] = False
    if "Precision" in facets:
        described["$Precision"], described["$Scale"] = int(facets["Precision"]), int(facets["Scale"])
    if "MaxLength" in facets:
        described["$MaxLength"] = int(facets["MaxLength"])
    if field.lookup:
        described[f"@{LOOKUP_NAME_TERM}"] = field.lookup
    return described


@cache
def metadata_json() -> bytes:
    """The same model as CSDL JSON (OData 4.01)."""
    schema: dict[str, object] = {}
    container: dict[str, object] = {"$Kind": "EntityContainer"}
    for entity in entity_sets().values():
        described: dict[str, object] = {"$Kind": "EntityType", "$Key": [entity.key]}
        described.update({name: _json_property(field, entity) for name, field in entity.fields.items()})
        for link in entity.navigation.values():
            described[link.name] = {"$Kind": "NavigationProperty", "$Type": f"{NAMESPACE}.{link.resource}"} | (
                {"$Collection": True} if link.many else {"$Nullable": True}
            )
        schema[entity.name] = described
        container[entity.name] = {"$Collection": True, "$Type": f"{NAMESPACE}.{entity.name}"} | (
            {"$NavigationPropertyBinding": {link.name: link.resource for link in entity.navigation.values()}}
            if entity.navigation
            else {}
        )
    schema[CONTAINER] = container
    document = {"$Version": "4.01", "$EntityContainer": f"{NAMESPACE}.{CONTAINER}", NAMESPACE: schema}
    return orjson.dumps(document)
