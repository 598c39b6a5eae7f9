"""Spark SQL -> DuckDB: dataset references, STREAM reads, and each dialect gap we close."""

import duckdb
import pytest

from pipelines._engine.sql import SqlError, parse, references, spark_to_duckdb_expression, to_duckdb


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
