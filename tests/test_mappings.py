"""The RESO mapping files against the RESO Data Dictionary 2.0 (tests/contracts/reso_dd.json)."""

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from conf.mappings import (
    COLLECTION,
    MappingError,
    display_name,
    load_mapping,
    reso_lookups,
    resource_mappings,
    spark_literal,
)
from pipelines.coverage import as_markdown, coverage
from pipelines.gold import gold_datasets, used_lookups

DD = json.loads((Path(__file__).parent / "contracts" / "reso_dd.json").read_text())
RESOURCES = ["Property", "Member", "Office", "Media", "Contacts", "ShowingAppointment"]
INTEGER_TYPES = {"Edm.Int16", "Edm.Int32", "Edm.Int64"}
ENUM_PREFIX = "org.reso.metadata.enums."


def standard_fields(mapping):
    return [f for f in mapping.fields if not f.is_local]


def dd_fields(resource: str) -> dict[str, dict]:
    return DD["fields"][resource]


def allowed_types(definition: dict) -> set[str]:
    """The EDM types DD 2.0 allows for a field (string-lookup flavour for enumerations)."""
    kind = definition["type"]
    collection = definition.get("isCollection", False)
    if kind.startswith(ENUM_PREFIX):
        return {COLLECTION} if collection else {"Edm.String"}
    if kind == "Edm.Decimal" and definition.get("scale") == 0:
        return {"Edm.Decimal"} | INTEGER_TYPES
    if kind == "Edm.Decimal":
        return {"Edm.Decimal", "Edm.Double"}
    return {kind}


def forbidden_local_names(resource: str) -> set[str]:
    """The resource's DD 2.0 field names and their synonyms: an `X_` field must not shadow one."""
    names = set()
    for name, definition in dd_fields(resource).items():
        names.add(name.lower())
        names.update(s.strip().lower() for s in (definition.get("synonyms") or "").split(",") if s.strip())
    return names


def test_every_resource_has_a_mapping() -> None:
    assert sorted(resource_mappings()) == sorted(RESOURCES)


@pytest.mark.parametrize("resource", RESOURCES)
def test_standard_field_names_are_dd_fields_of_their_resource(resource: str) -> None:
    unknown = [f.name for f in standard_fields(resource_mappings()[resource]) if f.name not in dd_fields(resource)]
    assert unknown == []


@pytest.mark.parametrize("resource", RESOURCES)
def test_standard_field_types_are_what_dd_allows(resource: str) -> None:
    wrong = {
        f.name: (f.type, sorted(allowed_types(dd_fields(resource)[f.name])))
        for f in standard_fields(resource_mappings()[resource])
        if f.type not in allowed_types(dd_fields(resource)[f.name])
    }
    assert wrong == {}


@pytest.mark.parametrize("resource", RESOURCES)
def test_lookup_fields_use_the_lookup_dd_names_for_them(resource: str) -> None:
    mapping = resource_mappings()[resource]
    for field in standard_fields(mapping):
        definition = dd_fields(resource)[field.name]
        if definition["type"].startswith(ENUM_PREFIX):
            lookup = definition["type"].removeprefix(ENUM_PREFIX)
            # Open lookups with no DD values too (City): RESO requires the annotation on every one.
            assert field.lookup == lookup, f"{field.name} must be a field of lookup {lookup}"
        else:
            assert field.lookup is None, f"{field.name} is not a lookup field in DD 2.0"


@pytest.mark.parametrize("resource", RESOURCES)
def test_every_lookup_value_is_a_dd_value_and_locked_lookups_only_standard(resource: str) -> None:
    for field in resource_mappings()[resource].lookup_fields:
        values = DD["lookups"].get(field.lookup, {})
        assert set(field.legacy_values()) <= set(values), field.name
        definition = dd_fields(resource).get(field.name, {})
        if definition.get("lookupStatus") == "Locked with Enumerations":
            assert not field.open, f"{field.name}: a locked lookup cannot take local values"


@pytest.mark.parametrize("resource", RESOURCES)
def test_local_fields_do_not_reuse_dd_names_or_synonyms(resource: str) -> None:
    forbidden = forbidden_local_names(resource)
    clashes = [f.name for f in resource_mappings()[resource].fields if f.is_local and f.name[2:].lower() in forbidden]
    assert clashes == []


def test_standard_status_carries_only_its_locked_values() -> None:
    status = resource_mappings()["Property"].field("StandardStatus")
    assert set(status.values.values()) <= set(DD["lookups"]["StandardStatus"])
    assert set(status.values) == {"pending", "available", "reserved", "sold", "rented", "withdrawn", "under_offer"}


def test_property_types_are_reso_property_types_not_subtypes() -> None:
    mapping = resource_mappings()["Property"]
    assert set(mapping.field("PropertyType").emits) <= set(DD["lookups"]["PropertyType"])
    subtypes = set(mapping.field("PropertySubType").values.values())
    assert {"Apartment", "SingleFamilyResidence"} <= subtypes <= set(DD["lookups"]["PropertySubType"])


def test_furnished_translates_every_qobrix_furnished_value() -> None:
    furnished = resource_mappings()["Property"].field("Furnished")
    assert set(furnished.values) == {"furnished", "semi_furnished", "optionally_furnished", "unfurnished"}


def test_property_keeps_the_2025_extent() -> None:
    mapping = resource_mappings()["Property"]
    local = [f for f in mapping.fields if f.is_local]
    assert len(standard_fields(mapping)) >= 48 and len(local) >= 129


def test_wire_values_are_the_standard_display_names() -> None:
    assert display_name("PropertySubType", "SingleFamilyResidence") == "Single Family Residence"
    assert display_name("StandardStatus", "ActiveUnderContract") == "Active Under Contract"
    assert reso_lookups()["PropertyType"] == DD["lookups"]["PropertyType"]


def test_lookup_resource_lists_every_lookup_gold_uses() -> None:
    used = {f.lookup for m in resource_mappings().values() for f in m.lookup_fields}
    assert set(used_lookups()) == used
    lookup = next(d for d in gold_datasets() if d.name == "reso_gold.standard_lookups")
    assert "'StandardStatus.ActiveUnderContract', 'StandardStatus', 'Active Under Contract'" in lookup.sql


def write_mapping(tmp_path: Path, fields: list[dict], **document: object) -> Path:
    path = tmp_path / "thing.yaml"
    body = {"resource": "Property", "table": "reso_gold.thing", "key": "ListingKey", "from": "t", "fields": fields}
    path.write_text(yaml.safe_dump({**body, **document}))
    return path


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ([{"name": "ListingKey", "expression": "id", "from": "x"}], "give one of"),
        ([{"name": "ListingKey", "expression": "id", "type": "Edm.Money"}], "unsupported type Edm.Money"),
        ([{"name": "ListingKey", "lookup": "StandardStatus", "from": "s", "values": {"a": "Activ"}}], "'Activ'"),
        ([{"name": "ListingKey", "lookup": "NoSuchLookup", "from": "s", "values": {"a": "b"}}], "NoSuchLookup"),
        ([{"name": "ListingKey", "lookup": "PetsAllowed", "expression": "x", "emits": [True]}], "quote it"),
        ([{"name": "ListingKey", "expression": "id"}, {"name": "ListingKey", "expression": "id"}], "repeat"),
        ([{"name": "Other", "expression": "id"}], "key ListingKey is not one of its fields"),
        ([{"name": "ListingKey", "expression": "id", "colour": "red"}], "colour"),
        (
            [
                {"name": "ListingKey", "expression": "id"},
                {"name": "StandardStatus", "lookup": "StandardStatus", "open": True, "expression": "s"},
            ],
            "DD 2.0 locks StandardStatus; it cannot be `open`",
        ),
        ([{"name": "ListingKey", "expression": "id", "max_length": "long"}], "`max_length` is a positive whole number"),
    ],
)
def test_a_bad_mapping_file_is_refused_with_the_file_and_field_named(
    tmp_path: Path, fields: list[dict], message: str
) -> None:
    with pytest.raises(MappingError, match=r"thing\.yaml") as error:
        load_mapping(write_mapping(tmp_path, fields))
    assert message in str(error.value)


def test_the_coverage_document_is_the_generated_report() -> None:
    document = (Path(__file__).parents[1] / "docs" / "COVERAGE.md").read_text()
    table = document.split("<!-- coverage:start -->\n", 1)[1].split("<!-- coverage:end -->", 1)[0]
    assert table == as_markdown(coverage())


def sqlglot_literal(text: str) -> str:
    return exp.Literal.string(text).sql(dialect="databricks")


def test_every_literal_the_graph_quotes_is_quoted_as_sqlglot_quotes_it() -> None:
    """Texts without control characters (quotes and backslashes escaped) are quoted without sqlglot;
    the gold bodies' values, and the texts sqlglot escapes (quotes, backslashes, control characters,
    a line separator, a no-break space), come out as sqlglot writes them."""
    quoted = [
        text
        for lookup in used_lookups()
        for legacy, standard in reso_lookups()[lookup].items()
        for text in (f"{lookup}.{legacy}", lookup, standard, legacy)
    ]
    tricky = [
        "a'b",
        "a\\b",
        "tab\there",
        "line\nbreak",
        "\x7f",
        "\u2028",
        "\xa0",
        "\ufeff",
        "é ñ 中",
        "",
        "--x",
        "/*x*/",
    ]
    assert len(quoted) > 1_000
    assert {text: spark_literal(text) for text in [*quoted, *tricky]} == {
        text: sqlglot_literal(text) for text in [*quoted, *tricky]
    }


@given(st.text(max_size=40))
@settings(max_examples=300, deadline=None)
def test_any_text_is_quoted_as_sqlglot_quotes_it(text: str) -> None:
    assert spark_literal(text) == sqlglot_literal(text)
