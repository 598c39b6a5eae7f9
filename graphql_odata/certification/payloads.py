"""Every record a server sends, validated against a JSON schema built from its own `$metadata`, as
RESO's payload validation does: types, `MaxLength`, decimal precision, lookup values listed by the
Lookup resource, and no field the metadata does not advertise."""

import re
from collections import defaultdict
from datetime import date, datetime

from jsonschema import Draft202012Validator, FormatChecker

from graphql_odata.certification.report import Finding
from graphql_odata.certification.served_model import ServedEntity, ServedField

SAMPLE_KEYS = 5
INTEGER_RANGE = {
    "Edm.Byte": (0, 255),
    "Edm.SByte": (-128, 127),
    "Edm.Int16": (-(2**15), 2**15 - 1),
    "Edm.Int32": (-(2**31), 2**31 - 1),
    "Edm.Int64": (-(2**63), 2**63 - 1),
}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$")
DATE = re.compile(r"^\d{4}-\d\d-\d\d$")
FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _is_timestamp(value: object) -> bool:
    """OData's DateTimeOffset: RFC 3339 with a zone (a date, a time and an offset that exist)."""
    return not isinstance(value, str) or (bool(TIMESTAMP.match(value)) and bool(datetime.fromisoformat(value)))


@FORMATS.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    return not isinstance(value, str) or (bool(DATE.match(value)) and bool(date.fromisoformat(value)))


def _element_schema(field: ServedField, lookup_values: dict[str, set[str]] | None) -> dict:
    kind = field.element_type
    if kind in INTEGER_RANGE:
        low, high = INTEGER_RANGE[kind]
        return {"type": "integer", "minimum": low, "maximum": high}
    if kind in ("Edm.Decimal", "Edm.Double", "Edm.Single"):
        schema: dict = {"type": "number"}
        if kind == "Edm.Decimal" and field.precision is not None:
            bound = 10 ** (field.precision - (field.scale or 0))
            schema |= {"exclusiveMaximum": bound, "exclusiveMinimum": -bound}
        return schema
    if kind == "Edm.Boolean":
        return {"type": "boolean"}
    if kind == "Edm.Date":
        return {"type": "string", "format": "date"}
    if kind == "Edm.DateTimeOffset":
        return {"type": "string", "format": "date-time"}
    if kind.startswith("Edm.") and kind not in ("Edm.String", "Edm.Guid"):
        return {}  # geography and the like: not checked
    schema = {"type": "string"}  # text, and members of an enum type
    if field.max_length is not None:
        schema["maxLength"] = field.max_length
    if field.lookup_name is not None and lookup_values is not None:
        schema["enum"] = sorted(lookup_values.get(field.lookup_name, set()))
    return schema


def record_schema(entity: ServedEntity, lookup_values: dict[str, set[str]] | None) -> dict:
    """A record of `entity`: its advertised fields, nullable ones also null; instance annotations
    (names with `@`) allowed; nothing else."""
    properties = {}
    for field in entity.fields.values():
        element = _element_schema(field, lookup_values)
        if field.is_collection:
            properties[field.name] = {"type": "array", "items": element}
            continue
        if field.nullable and "type" in element:
            element["type"] = [element["type"], "null"]
            if "enum" in element:
                element["enum"].append(None)
        properties[field.name] = element
    return {"type": "object", "properties": properties, "patternProperties": {"@": {}}, "additionalProperties": False}


RULES = {
    "type": ("payload.type", "MUST be of the advertised type"),
    "format": ("payload.type", "MUST be of the advertised type"),
    "maxLength": ("payload.max_length", "MUST have at most the advertised number of characters"),
    "enum": ("payload.lookup", "MUST be a value the Lookup resource lists for its lookup"),
    "exclusiveMaximum": ("payload.precision", "MUST fit the advertised precision"),
    "exclusiveMinimum": ("payload.precision", "MUST fit the advertised precision"),
    "maximum": ("payload.range", "MUST fit the advertised integer type"),
    "minimum": ("payload.range", "MUST fit the advertised integer type"),
    "additionalProperties": ("payload.unadvertised", "Fields MUST be advertised in the metadata"),
}
UNEXPECTED = re.compile(r"'([^']+)'")


class PayloadValidator:
    """Validates one resource's records as they arrive; `findings()` sums them up per rule and field."""

    def __init__(self, entity: ServedEntity, lookup_values: dict[str, set[str]] | None) -> None:
        self.entity = entity
        self.validator = Draft202012Validator(record_schema(entity, lookup_values), format_checker=FORMATS)
        self.errors: dict[tuple[str, str], dict] = defaultdict(lambda: {"count": 0, "keys": [], "values": []})
        self.values: dict[str, set[str]] = defaultdict(set)
        """Each lookup field's values as served (for the variation scan)."""

    def validate(self, record: dict) -> None:
        key = ",".join(str(record.get(name)) for name in self.entity.key)
        for name, field in self.entity.fields.items():
            if field.lookup_name is not None and record.get(name) is not None:
                value = record[name]
                self.values[name].update(value if isinstance(value, list) else [value])
        broken: set[tuple[str, str]] = set()
        for error in self.validator.iter_errors(record):
            rule, _ = RULES.get(error.validator, ("payload.type", ""))
            if error.validator == "additionalProperties":
                fields = UNEXPECTED.findall(error.message)
            else:
                fields = [str(error.absolute_path[0]) if error.absolute_path else "?"]
            for field in fields:
                if (rule, field) in broken:
                    continue  # a record counts once per rule and field, however many of a list's items break it
                broken.add((rule, field))
                entry = self.errors[rule, field]
                entry["count"] += 1
                if len(entry["keys"]) < SAMPLE_KEYS:
                    entry["keys"].append(key)
                    entry["values"].append(repr(error.instance)[:80])

    def findings(self) -> list[Finding]:
        found = []
        for (rule, field), entry in sorted(self.errors.items()):
            summary = next(text for r, text in RULES.values() if r == rule)
            values = ", ".join(entry["values"][:3])
            found.append(
                Finding(
                    rule,
                    "failure",
                    f"{entry['count']} record(s): {summary} (keys {', '.join(entry['keys'])}; values {values})",
                    self.entity.name,
                    field,
                    {"summary": summary, "count": entry["count"], "keys": entry["keys"]},
                )
            )
        return found
