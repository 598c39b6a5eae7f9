"""Every text field's `MaxLength` holds what Qobrix can send it: a longer value would break a client
that sizes its columns from `$metadata`, and fail RESO's payload validation.

The expected lengths come from Qobrix's OpenAPI (tests/contracts/qobrix_schemas.json), not from the
mapping: for each field whose value is a Qobrix column (possibly upper-cased, coalesced or behind a
literal prefix), the served length must be at least the column's. Qobrix's longest declared text
is 16,384 characters; text it declares no length for (custom fields) is served at that length.
"""

import json
import re
from pathlib import Path

import pytest

from conf.mappings import resource_mappings
from graphql_odata.schema import entity_sets

SCHEMAS = json.loads((Path(__file__).parent / "contracts" / "qobrix_schemas.json").read_text())["schemas"]
UNBOUNDED = 1 << 20
# The Qobrix entity behind each table alias of a mapping's `from` clause.
SOURCES = {
    "Property": {"p": ["Property"], "pr": ["Project"], "dev": ["Contact"]},
    "Contacts": {"c": ["Contact"]},
    "Member": {"m": ["Agent", "User"]},
    "Office": {"a": ["Agent"]},
    "ShowingAppointment": {"v": ["PropertyViewing"]},
}
COLUMN = re.compile(r"\b([a-z]+)\.([a-z_0-9]+)\b")
WRAPPERS = re.compile(r"^(?:upper|lower|initcap|trim)\((.*)\)$")
PREFIXED = re.compile(r"^concat\('([^']*)', ([a-z]+\.[a-z_0-9]+)\)$")


def qobrix_length(entities: list[str], column: str) -> int | None:
    """The most characters Qobrix sends in a column (UNBOUNDED for text it does not limit), or None
    when the column is not Qobrix text under that name."""
    lengths = []
    for entity in entities:
        spec = SCHEMAS[entity].get("properties", {}).get(column)
        if spec and spec.get("type") == "string" and spec.get("format") == "uuid":
            lengths.append(36)
        elif spec and spec.get("type") == "string" and "format" not in spec and "enum" not in spec:
            lengths.append(spec.get("maxLength", UNBOUNDED))
    return max(lengths) if lengths else None


def source_length(resource: str, expression: str) -> int | None:
    """How long a field's value can be, when it is a Qobrix column as it is or lightly wrapped."""
    expression = expression.strip()
    while match := WRAPPERS.match(expression):
        expression = match.group(1)
    prefix = ""
    if match := PREFIXED.match(expression):
        prefix, expression = match.groups()
    if expression.startswith("coalesce("):
        parts = [part.strip() for part in expression.removeprefix("coalesce(").removesuffix(")").split(",")]
    else:
        parts = [expression]
    lengths = []
    for part in parts:
        column = COLUMN.fullmatch(part)
        entities = SOURCES.get(resource, {}).get(column.group(1)) if column else None
        length = qobrix_length(entities, column.group(2)) if entities else None
        if length is None:
            return None
        lengths.append(length)
    return len(prefix) + max(lengths)


def text_fields() -> list[tuple[str, str, int]]:
    checked = []
    for resource, mapping in resource_mappings().items():
        for field in mapping.fields:
            expression = field.expression or field.source
            translated = field.values and not field.open  # the value is one of DD's, not the code
            if field.is_text and expression and not field.emits and not translated:
                length = source_length(resource, expression)
                if length is not None:
                    checked.append((resource, field.name, length))
    return checked


def test_the_length_rule_reads_enough_fields_to_matter() -> None:
    assert len(text_fields()) >= 50
    assert source_length("Property", "upper(p.city)") == 255
    assert source_length("ShowingAppointment", "concat('QOBRIX_', v.id)") == len("QOBRIX_") + 36


@pytest.mark.parametrize(("resource", "name", "length"), text_fields(), ids=lambda v: str(v))
def test_max_length_holds_the_qobrix_text(resource: str, name: str, length: int) -> None:
    served = entity_sets()[resource].fields[name].max_length
    assert length < UNBOUNDED or served >= 16384, f"{resource}.{name}: Qobrix does not limit it; give a max_length"
    assert served >= min(length, 16384), f"{resource}.{name}: MaxLength {served}, Qobrix sends up to {length}"


@pytest.mark.parametrize("resource", sorted(resource_mappings()))
def test_a_reference_is_as_long_as_the_key_it_names(resource: str) -> None:
    mapping = resource_mappings()[resource]
    for name, target in mapping.references.items():
        target_resource, _, target_field = target.partition(".")
        mine = entity_sets()[resource].fields[name].max_length
        theirs = entity_sets()[target_resource].fields[target_field].max_length
        assert mine >= theirs, f"{resource}.{name} ({mine}) holds {target} ({theirs})"


def test_every_text_field_has_a_length() -> None:
    assert all(f.max_length for e in entity_sets().values() for f in e.fields.values() if f.is_text)
