"""Spark SQL -> DuckDB: dataset references, STREAM reads, and each dialect gap we close."""

from decimal import Decimal

import duckdb
import pytest
from sqlglot import exp

from pipelines._engine.sql import spark_to_duckdb_expression, to_duckdb
from pipelines.spark_sql import SparkSql, SqlError, parse, references


def run_duckdb(sql: str) -> list[tuple]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con.execute(sql).fetchall()


def test_references_split_whole_and_streaming_reads() -> None:
    tree = parse(
        "SELECT * FROM STREAM(qobrix_bronze.properties) p JOIN qobrix_silver.agent a ON a.id = p.agent",
        origin="t",
    )
    assert references(tree) == ({"qobrix_silver.agent"}, {"qobrix_bronze.properties"})


def test_to_duckdb_points_references_at_prepared_relations() -> None:
    tree = parse(
        "SELECT p.id FROM STREAM(qobrix_bronze.properties) p JOIN qobrix_silver.agent a ON a.id = p.id", origin="t"
    )
    sql = to_duckdb(tree, lambda name, streaming: ("new_" if streaming else "all_") + name.replace(".", "_"))
    assert "new_qobrix_bronze_properties AS p" in sql
    assert "all_qobrix_silver_agent AS a" in sql


def test_to_timestamp_keeps_the_offset() -> None:
    expression = spark_to_duckdb_expression("to_timestamp('2025-12-02T10:00:00+02:00')")
    [(value,)] = run_duckdb(f"SELECT CAST({expression} AS VARCHAR)")
    assert value == "2025-12-02 08:00:00+00"


def test_try_to_timestamp_reads_both_qobrix_formats_and_nulls_garbage() -> None:
    values = ["'2025-12-02 10:00:00'", "'2025-12-02T10:00:00+00:00'", "'garbage'"]
    rendered = ", ".join(f"CAST({spark_to_duckdb_expression(f'try_to_timestamp({v})')} AS VARCHAR)" for v in values)
    assert run_duckdb(f"SELECT {rendered}") == [("2025-12-02 10:00:00+00", "2025-12-02 10:00:00+00", None)]


def test_get_json_object_reads_nested_text() -> None:
    expression = spark_to_duckdb_expression("""get_json_object('{"a": {"b": "x"}}', '$.a.b')""")
    assert run_duckdb(f"SELECT {expression}") == [("x",)]


def test_non_queries_and_bad_sql_are_refused() -> None:
    with pytest.raises(SqlError, match="must be a query"):
        parse("DROP TABLE qobrix_silver.property", origin="evil")
    with pytest.raises(SqlError, match="does not parse"):
        parse("SELECT FROM WHERE (", origin="broken")


def test_get_json_object_on_text_that_is_not_json_is_null() -> None:
    expression = spark_to_duckdb_expression("get_json_object('{\"a\": 1', '$.a')")
    assert run_duckdb(f"SELECT {expression}") == [(None,)]


def test_get_json_object_calls_on_one_text_parse_it_once() -> None:
    tree = parse(
        "SELECT get_json_object(payload, '$.id') AS id, "
        "try_to_timestamp(get_json_object(payload, '$.modified')) AS changed, "
        "get_json_object(payload, '$.media[*].id') AS media FROM STREAM(qobrix_bronze.properties)",
        origin="t",
    )
    rows = (
        '(SELECT * FROM (VALUES (\'{"id": "p1", "modified": "2025-12-02T10:00:00+00:00", '
        '"media": [{"id": "m1"}]}\'), (\'{"id": "p2"\'), (NULL), (\'[1]\')) v(payload))'
    )
    sql = f"WITH rows AS {rows} " + to_duckdb(tree, lambda name, streaming: "rows")
    assert sql.count("JSON_EXTRACT_STRING(payload, ['$.id', '$.modified'])") == 2
    assert "JSON_EXTRACT_STRING(payload, '$.media[*].id')" in sql
    assert run_duckdb(f"SELECT id, CAST(changed AS VARCHAR) FROM ({sql}) ORDER BY id NULLS LAST") == [
        ("p1", "2025-12-02 10:00:00+00"),
        (None, None),
        (None, None),
        (None, None),
    ]


def test_from_json_reads_text_once_and_agrees_with_casting_through_json() -> None:
    schema = "struct<a:string,b:array<struct<c:decimal(18,2)>>,t:timestamp,i:int,f:boolean>"
    documents = [
        '{"a": 1, "b": [{"c": "1.234"}], "t": "2025-01-01T10:00:00+02:00", "i": "7", "f": true}',
        '{"a": {"x": 1}, "b": {"c": 1}, "t": 5, "i": "x", "f": "yes"}',
        '{"b": [{"c": "abc"}, 3], "i": 7.6}',
        "not json",
        "[1, 2]",
        None,
    ]
    values = ", ".join("(NULL)" if doc is None else f"('{doc}')" for doc in documents)
    tree = parse(f"SELECT from_json(payload, '{schema}') AS p FROM STREAM(qobrix_bronze.properties)", origin="t")
    rows = f"WITH rows AS (SELECT * FROM (VALUES {values}) v(payload)) "
    sql = rows + to_duckdb(tree, lambda name, streaming: "rows")
    assert "JSON_TRANSFORM(payload" in sql
    target = exp.DataType.build(schema, dialect=SparkSql).sql(dialect="duckdb")
    cast = f"SELECT TRY_CAST(TRY_CAST(payload AS JSON) AS {target}) AS p FROM (VALUES {values}) v(payload)"
    assert run_duckdb(sql) == run_duckdb(cast)
    assert run_duckdb(sql)[0][0]["b"][0]["c"] == Decimal("1.23")


def test_from_json_of_a_map_is_cast_through_json() -> None:
    tree = parse(
        "SELECT from_json(payload, 'map<string,string>') AS m FROM STREAM(qobrix_bronze.properties)", origin="t"
    )
    sql = 'WITH rows AS (SELECT \'{"a": "b"}\' AS payload) ' + to_duckdb(tree, lambda name, streaming: "rows")
    assert run_duckdb(sql) == [({"a": "b"},)]


def test_json_functions_of_a_volatile_expression_give_null_not_an_error() -> None:
    text = "CASE WHEN rand() < 0.5 THEN '{\"a\": \"1\"}' ELSE 'not json' END"
    extracted = spark_to_duckdb_expression(f"get_json_object({text}, '$.a')")
    parsed = spark_to_duckdb_expression(f"from_json({text}, 'struct<a:string>').a")
    [(found, read)] = run_duckdb(f"SELECT count({extracted}), count({parsed}) FROM range(20000)")
    assert 0 < found < 20000 and 0 < read < 20000
