"""`$metadata` as RESO's Commander judges it: syntax against the OData CSDL schemas, then every
standard field's type, lookup annotation and length, synonyms, navigation and the Lookup resource
against Data Dictionary 2.0."""

from pathlib import Path

from lxml import etree

from conf.data_dictionary import DataDictionary, StandardField
from graphql_odata.certification.report import Finding
from graphql_odata.certification.served_model import ServedEntity, ServedField

INTEGER_TYPES = frozenset({"Edm.Int16", "Edm.Int32", "Edm.Int64"})
LOOKUP_RESOURCE_FIELDS = ("LookupKey", "LookupName", "LookupValue", "ModificationTimestamp")


def syntax(document: bytes, schemas: Path) -> list[Finding]:
    """`$metadata` validated against the OASIS CSDL XML schemas (`edmx.xsd` in `schemas`)."""
    edmx = schemas / "edmx.xsd"
    try:
        schema = etree.XMLSchema(etree.parse(str(edmx)))
    except (OSError, etree.XMLSchemaParseError, etree.XMLSyntaxError) as error:
        return [
            Finding(
                "metadata.syntax",
                "failure",
                f"cannot check $metadata's syntax: the CSDL schemas at {schemas} cannot be read ({error}); "
                "run `make csdl-schemas`, or give --csdl-schemas",
            )
        ]
    try:
        valid = schema.validate(etree.fromstring(document))
    except etree.XMLSyntaxError as error:
        return [Finding("metadata.syntax", "failure", f"$metadata is not XML: {error}")]
    if valid:
        return []
    return [
        Finding("metadata.syntax", "failure", f"$metadata line {error.line}: {error.message}")
        for error in list(schema.error_log)[:20]
    ]


def allowed_types(standard: StandardField) -> set[str]:
    """The EDM types DD 2.0 allows for a field, lookups in the string flavour (or an enum type of the
    lookup's name). DD's integers are `Edm.Decimal` of scale 0 in its JSON."""
    if standard.lookup:
        return {"Collection(Edm.String)"} if standard.is_collection else {"Edm.String"}
    if standard.type == "Edm.Decimal" and standard.scale == 0:
        return {"Edm.Decimal"} | INTEGER_TYPES
    if standard.type == "Edm.Decimal":
        return {"Edm.Decimal", "Edm.Double"}
    return {standard.type}


def _field(entity: ServedEntity, served: ServedField, standard: StandardField) -> list[Finding]:
    where = {"resource": entity.name, "field": served.name}
    findings = []
    # An enum type of the lookup's name, in whatever namespace, is the other flavour RESO allows.
    enum_flavour = standard.lookup is not None and served.element_type.rsplit(".", 1)[-1] == standard.lookup
    if served.type not in allowed_types(standard) and not (
        enum_flavour and served.is_collection == standard.is_collection
    ):
        allowed = " or ".join(sorted(allowed_types(standard)))
        findings.append(
            Finding("field.type", "failure", f"is {served.type}; DD 2.0 says it MUST be {allowed}", **where)
        )
    if standard.lookup and served.element_type == "Edm.String":
        if served.lookup_name is None:
            findings.append(
                Finding(
                    "lookup.annotation",
                    "failure",
                    f"a lookup field ({standard.lookup}) served as a string without the "
                    "RESO.OData.Metadata.LookupName annotation",
                    **where,
                )
            )
        elif served.lookup_name != standard.lookup:
            findings.append(
                Finding(
                    "lookup.annotation",
                    "failure",
                    f"names lookup {served.lookup_name}; DD 2.0's is {standard.lookup}",
                    **where,
                )
            )
    if served.element_type == "Edm.String":
        suggested = standard.max_length
        if served.max_length is None:
            findings.append(
                Finding("field.max_length", "warning", f"has no MaxLength (DD 2.0 suggests {suggested})", **where)
            )
        elif suggested is not None and served.max_length != suggested:
            findings.append(
                Finding(
                    "field.max_length",
                    "note",
                    f"MaxLength {served.max_length} differs from DD 2.0's suggested {suggested}",
                    **where,
                    detail={"maxLength": served.max_length, "suggested": suggested},
                )
            )
    return findings


def dictionary(sets: dict[str, ServedEntity], dd: DataDictionary) -> list[Finding]:
    """Every served resource DD 2.0 defines, field by field and link by link."""
    findings: list[Finding] = []
    for entity in sets.values():
        standard_fields = dd.resources.get(entity.name)
        if standard_fields is None:
            findings.append(Finding("resource.local", "note", "a resource DD 2.0 does not define", entity.name))
            continue
        synonyms = {s.lower(): f.name for f in standard_fields.values() for s in f.synonyms}
        for served in entity.fields.values():
            standard = standard_fields.get(served.name)
            if standard is not None and not standard.is_expansion:
                findings += _field(entity, served, standard)
                continue
            if served.name.lower() in synonyms:
                findings.append(
                    Finding(
                        "field.synonym",
                        "failure",
                        f"is a synonym of DD 2.0's {synonyms[served.name.lower()]}: synonyms are not allowed",
                        entity.name,
                        served.name,
                    )
                )
            if served.element_type == "Edm.String" and served.max_length is None:
                findings.append(
                    Finding("field.max_length", "warning", "a local string with no MaxLength", entity.name, served.name)
                )
        for link in entity.links.values():
            standard = standard_fields.get(link.name)
            if standard is None or not standard.is_expansion:
                findings.append(
                    Finding(
                        "navigation.local",
                        "note",
                        f"a local navigation property to {link.target}",
                        entity.name,
                        link.name,
                    )
                )
            elif (link.target, link.many) != (standard.type_name, standard.is_collection):
                expected = f"Collection({standard.type_name})" if standard.is_collection else standard.type_name
                served_type = f"Collection({link.target})" if link.many else link.target
                findings.append(
                    Finding(
                        "navigation.type",
                        "failure",
                        f"leads to {served_type}; DD 2.0's leads to {expected}",
                        entity.name,
                        link.name,
                    )
                )
    # Lookups served as strings are listed by the Lookup resource (servers of enum types need none).
    string_lookups = any(f.lookup_name for entity in sets.values() for f in entity.fields.values())
    lookup = sets.get("Lookup")
    missing = [name for name in LOOKUP_RESOURCE_FIELDS if lookup is None or name not in lookup.fields]
    if missing and string_lookups:
        findings.append(
            Finding(
                "lookup.resource", "failure", f"the Lookup resource is missing, or lacks {', '.join(missing)}", "Lookup"
            )
        )
    return findings
