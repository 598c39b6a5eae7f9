"""Regenerate the contract fixtures from the reference material in ../shared/reference.

    python tests/contracts/extract.py [REFERENCE_DIR]

`qobrix_schemas.json`: the OpenAPI component schemas of every Qobrix entity the product
reads (from the 2025-11 spec); `reso_dd.json`: the RESO Data Dictionary 2.0 fields of the
resources the product serves and the lookups they use. Contract tests read these, so they
run where the reference folder is absent. The product's own copy of those lookups,
`conf/reso_dictionary.yaml`, is written from the same extract.
"""

import json
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).parent
DEFAULT_REFERENCE = HERE.parents[2] / "shared" / "reference"
QOBRIX_SCHEMAS = HERE / "qobrix_schemas.json"
RESO_DD = HERE / "reso_dd.json"
RESO_DICTIONARY = HERE.parents[1] / "conf" / "reso_dictionary.yaml"
RESO_DATA_DICTIONARY = HERE.parents[1] / "conf" / "reso_dd_2_0.json"
RESO_RESOURCES = ("Property", "Member", "Office", "Media", "Contacts", "ShowingAppointment", "Lookup")
FIELD_KEYS = ("fieldName", "type", "nullable", "isEnumeration", "isCollection", "lookupStatus", "maxLength",
              "precision", "scale", "synonyms", "isExpansion", "typeName", "elementStatus")  # fmt: skip

ENTITY_SCHEMAS = {
    "properties": "Property", "agents": "Agent", "users": "User", "contacts": "Contact",
    "property-viewings": "PropertyViewing", "meetings": "Meeting", "opportunities": "Opportunity",
    "projects": "Project", "project-features": "ProjectFeature", "property-features": "PropertyFeature",
    "locations": "Location", "property-types": "PropertyType", "property-subtypes": "PropertySubtype",
    "media/categories": "MediaCategory", "bayut-locations": "BayutLocation", "bazaraki-locations": "BazarakiLocation",
    "spitogatos-locations": "SpitogatosLocation", "property-finder-a-e-locations": "PropertyFinderAELocation",
}  # fmt: skip
EXTRA_SCHEMAS = ("MediaResponse", "MediaFile", "pagination", "ErrorResponse")


def qobrix_schemas(reference: Path) -> dict:
    spec = yaml.load((reference / "qobrix" / "qobrix_openapi_2025-11.yaml").read_text(), Loader=yaml.CSafeLoader)
    components = spec["components"]["schemas"]
    names = sorted({*ENTITY_SCHEMAS.values(), *EXTRA_SCHEMAS})
    return {
        "source": "qobrix_openapi_2025-11.yaml components/schemas",
        "entities": ENTITY_SCHEMAS,
        "schemas": {name: components[name] for name in names},
    }


def _annotation(item: dict, term: str) -> str | None:
    return next((a["value"] for a in item.get("annotations", []) if a["term"] == term), None)


def reso_dd(reference: Path) -> dict:
    """Fields of the resources the product serves, and every lookup their enumerated fields use."""
    dd = json.loads((reference / "reso" / "dd-2.0.json").read_text())
    fields: dict[str, dict] = {resource: {} for resource in RESO_RESOURCES}
    used: set[str] = set()
    for field in dd["fields"]:
        if field["resourceName"] in fields:
            kept = {key: field[key] for key in FIELD_KEYS if key in field}
            kept["standardName"] = _annotation(field, "RESO.OData.Metadata.StandardName")
            kept["description"] = _annotation(field, "Core.Description")
            fields[field["resourceName"]][field["fieldName"]] = kept
            if field["type"].startswith("org.reso.metadata.enums."):
                used.add(field["type"].rsplit(".", 1)[1])
    lookups: dict[str, dict] = {}
    for lookup in dd["lookups"]:
        name = lookup["lookupName"].rsplit(".", 1)[1]
        if name in used:
            standard = _annotation(lookup, "RESO.OData.Metadata.StandardName")
            lookups.setdefault(name, {})[lookup["lookupValue"]] = standard
    return {
        "source": "dd-2.0.json",
        "version": dd["version"],
        "generated_on": dd["generatedOn"],
        "fields": fields,
        "lookups": lookups,
    }


def data_dictionary(reference: Path) -> dict:
    """All of DD 2.0, compact, for `mls2 reso check` (which checks any RESO server, not only ours): every
    resource's fields (type, suggested length, lookup and its status, expansion, synonyms) and every
    lookup's values (legacy OData name -> standard name)."""
    dd = json.loads((reference / "reso" / "dd-2.0.json").read_text())
    resources: dict[str, dict] = {name: {} for name in sorted(dd["resources"])}
    for field in dd["fields"]:
        kept = {"type": field["type"]}
        for source, target in (("maxLength", "maxLength"), ("precision", "precision"), ("scale", "scale"),
                               ("lookupStatus", "lookupStatus"), ("typeName", "typeName")):  # fmt: skip
            if field.get(source) is not None:
                kept[target] = field[source]
        if field.get("isCollection"):
            kept["isCollection"] = True
        if field.get("isExpansion"):
            kept["isExpansion"] = True
        if field.get("synonyms"):
            kept["synonyms"] = sorted({s.strip() for s in field["synonyms"].split(",") if s.strip()})
        resources.setdefault(field["resourceName"], {})[field["fieldName"]] = kept
    lookups: dict[str, dict[str, str]] = {}
    for lookup in dd["lookups"]:
        standard = _annotation(lookup, "RESO.OData.Metadata.StandardName")
        lookups.setdefault(lookup["lookupName"].rsplit(".", 1)[1], {})[lookup["lookupValue"]] = standard
    return {"version": dd["version"], "generated_on": dd["generatedOn"], "resources": resources, "lookups": lookups}


def main() -> None:
    reference = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_REFERENCE
    QOBRIX_SCHEMAS.write_text(json.dumps(qobrix_schemas(reference), indent=1, sort_keys=True) + "\n")
    dictionary = reso_dd(reference)
    RESO_DD.write_text(json.dumps(dictionary, indent=1, sort_keys=True) + "\n")
    header = "# RESO DD 2.0 for the served resources: their fields (name -> standard name) and the fields'\n"
    header += "# definitions (types, lengths and lookups are in reso_dd_2_0.json).\n"
    header += "# Generated by tests/contracts/extract.py from dd-2.0.json; do not edit.\n"
    fields = {
        resource: {
            name: field["standardName"] for name, field in resource_fields.items() if not field.get("isExpansion")
        }
        for resource, resource_fields in dictionary["fields"].items()
    }
    descriptions = {
        resource: {
            name: field["description"]
            for name, field in resource_fields.items()
            if field.get("description") and not field.get("isExpansion")
        }
        for resource, resource_fields in dictionary["fields"].items()
    }
    document = {"fields": fields, "descriptions": descriptions}
    body = yaml.safe_dump(document, sort_keys=True, allow_unicode=True, width=200)
    RESO_DICTIONARY.write_text(header + body, encoding="utf-8")
    full = data_dictionary(reference)
    RESO_DATA_DICTIONARY.write_text(json.dumps(full, sort_keys=True, indent=0) + "\n")
    print(f"wrote {QOBRIX_SCHEMAS}, {RESO_DD}, {RESO_DICTIONARY} and {RESO_DATA_DICTIONARY}")


if __name__ == "__main__":
    main()
