"""The graph: declared once, checked, ordered by dependency."""

from pathlib import Path

import pytest

from pipelines import AutoCdc, Dataset, DeclarationError, Expectation, load_graph
from pipelines.declaration import Violation, build_graph
from pipelines.spark_sql import parse, references, table_references
from pipelines.sql_files import parse_sql_file


def test_product_graph_runs_bronze_then_silver_then_gold() -> None:
    names = [dataset.name for dataset in load_graph().ordered()]
    assert (
        names.index("qobrix_bronze.properties")
        < names.index("qobrix_silver.property")
        < names.index("reso_gold.property")
    )
    silver = load_graph()["qobrix_silver.property"]
    assert silver.kind == "auto_cdc" and silver.cdc.keys == ("id",) and silver.cdc.sequence_by == "change_sequence"
    assert silver.depends_on == ("qobrix_silver.property_changes",)
    assert load_graph()["qobrix_silver.property_changes"].depends_on == ("qobrix_bronze.properties",)


def test_unknown_input_is_named() -> None:
    orphan = Dataset(name="qobrix_silver.x", kind="materialized_view", sql="SELECT * FROM qobrix_bronze.nothing")
    with pytest.raises(DeclarationError, match=r"qobrix_silver\.x reads qobrix_bronze\.nothing"):
        build_graph([orphan])


def test_cycles_are_refused() -> None:
    a = Dataset(name="qobrix_silver.a", kind="materialized_view", sql="SELECT * FROM qobrix_silver.b")
    b = Dataset(name="qobrix_silver.b", kind="materialized_view", sql="SELECT * FROM qobrix_silver.a")
    with pytest.raises(DeclarationError, match="cycle"):
        build_graph([a, b])


def test_declarations_contradicting_themselves_are_refused() -> None:
    with pytest.raises(DeclarationError, match=r"schema\.table"):
        Dataset(name="property", kind="materialized_view", sql="SELECT 1").validate()
    with pytest.raises(DeclarationError, match="only to, kind auto_cdc"):
        Dataset(
            name="qobrix_silver.a", kind="materialized_view", sql="SELECT 1", cdc=AutoCdc(keys=("id",), sequence_by="m")
        ).validate()
    rules = (Expectation("same", "true"), Expectation("same", "false"))
    with pytest.raises(DeclarationError, match="repeat"):
        Dataset(name="qobrix_silver.a", kind="materialized_view", sql="SELECT 1", expectations=rules).validate()


def test_sql_file_header_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "silver_thing.sql"
    path.write_text(
        "/*\nname: qobrix_silver.thing\nkind: auto_cdc\nkeys: [id]\nsequence_by: modified\n"
        "expectations:\n  - {name: id_present, constraint: id IS NOT NULL, on_violation: drop}\n*/\n"
        "SELECT * FROM STREAM(qobrix_bronze.properties)\n"
    )
    (dataset,) = parse_sql_file(path)
    assert dataset.cdc == AutoCdc(keys=("id",), sequence_by="modified")
    assert dataset.expectations == (Expectation("id_present", "id IS NOT NULL", "drop"),)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("SELECT 1", "starts with a /\\* YAML header"),
        ("/*\nname: qobrix_silver.thing\nkind: streaming_table\ncolour: red\n*/\nSELECT 1", "unknown header keys"),
        ("/*\nname: qobrix_silver.other\nkind: materialized_view\n*/\nSELECT 1", "named after its dataset"),
        ("/*\nname: qobrix_silver.thing\nkind: auto_cdc\n*/\nSELECT 1", "AUTO CDC settings incomplete"),
    ],
)
def test_bad_sql_files_are_named(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "silver_thing.sql"
    path.write_text(text)
    with pytest.raises(DeclarationError, match=problem):
        parse_sql_file(path)


def header_with_example(example: str) -> str:
    return (
        "/*\nname: qobrix_silver.thing\nkind: materialized_view\nexpectations:\n"
        f"  - {{name: id_present, constraint: id IS NOT NULL, on_violation: drop, violates: {example}}}\n"
        "  - {name: name_present, constraint: name IS NOT NULL}\n*/\nSELECT 1 AS id, 'a' AS name"
    )


def test_an_example_breaking_a_rule_is_parsed_with_it(tmp_path: Path) -> None:
    path = tmp_path / "silver_thing.sql"
    path.write_text(
        header_with_example("{entity: properties, record: {id: null, media.0.id: x}, also: [name_present]}")
    )
    example = parse_sql_file(path)[0].expectations[0].violates
    assert example == Violation(entity="properties", record=(("id", None), ("media.0.id", "x")), also=("name_present",))
    path.write_text(header_with_example("{row: {id: 'NULL'}}"))
    assert parse_sql_file(path)[0].expectations[0].violates == Violation(row=(("id", "NULL"),))


@pytest.mark.parametrize(
    ("example", "problem"),
    [
        ("{entity: properties}", "one of record, line or malformed"),
        ("{entity: properties, record: {id: null}, malformed: true}", "one of record, line or malformed"),
        ("{row: {id: 'NULL'}, entity: properties}", "one of record, line or malformed"),
        ("{entity: properties, record: [id]}", "record maps fields to values"),
        ("{row: {id: NULL}}", "quote NULL"),
        ("{entity: properties, malformed: true, also: name_present}", "also lists rule names"),
        ("{entity: properties, malformed: true, also: [no_such_rule]}", r"also names unknown rules \['no_such_rule'\]"),
        ("{entity: properties, recrod: {id: null}}", "violates takes"),
    ],
)
def test_a_malformed_example_is_refused_naming_the_rule(tmp_path: Path, example: str, problem: str) -> None:
    path = tmp_path / "silver_thing.sql"
    path.write_text(header_with_example(example))
    with pytest.raises(DeclarationError, match=problem):
        build_graph(parse_sql_file(path))


def test_graph_dependencies_from_tokens_agree_with_the_parsed_bodies() -> None:
    for dataset in load_graph().ordered():
        parsed = references(parse(dataset.sql, origin=dataset.name))
        assert table_references(dataset.sql, origin=dataset.name) == parsed, dataset.name
