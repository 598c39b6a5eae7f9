"""Every SQL body of the pipeline, run on a local Spark session and on DuckDB over the same inputs.

The inputs are what an embedded update over the sandbox (with defective records) produced:
landing lines for bronze, the upstream Delta tables for the rest. Spark runs each body as
Databricks would (STREAM(x) read as x in this batch comparison); DuckDB runs it as the
embedded engine does (through sqlglot). The outputs must hold the same rows.
"""

import datetime as dt
import math
import re
from decimal import Decimal

import duckdb
import pyarrow as pa
import pytest
from pyspark.sql import SparkSession

from benchmarks.spark_baseline import local_spark_session
from conf.settings import Settings, load_settings
from ingestion.sandbox import SandboxServer, SandboxWorld
from ingestion.sandbox.faults import FaultConfig
from pipelines import load_graph, run_update
from pipelines._engine.context import relation
from pipelines._engine.lakehouse import Lakehouse
from pipelines._engine.landing_reader import landing_files, register_landing
from pipelines._engine.sql import to_duckdb
from pipelines.declaration import LANDING_SCHEMA, Dataset
from pipelines.spark_sql import parse, references
from tests.conftest import delta_rows, make_sync

pytestmark = pytest.mark.slow

GRAPH = load_graph()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = load_settings(mls2_data_dir=tmp_path_factory.mktemp("parity"))
    world = SandboxWorld(seed=31, properties=400)
    with SandboxServer(world, faults=FaultConfig(defect_rate=0.03, seed=2)) as server:
        make_sync(settings, server)()
    run_update(settings.paths)
    return settings


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory):
    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    session = local_spark_session("mls2-parity", warehouse, partitions=2)
    yield session
    session.stop()


def inputs(dataset: Dataset) -> set[str]:
    reads, streams = references(parse(dataset.sql, origin=dataset.name))
    return reads | streams


def duckdb_output(dataset: Dataset, tables: dict[str, pa.Table]) -> pa.Table:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, table in tables.items():
        con.register(relation(name), table)
    body = to_duckdb(parse(dataset.sql, origin=dataset.name), lambda name, streaming: relation(name))
    return con.sql(body).to_arrow_table()


class Inputs:
    """The input tables of every dataset, as the embedded update left them, for both engines."""

    def __init__(self, settings: Settings, spark: SparkSession) -> None:
        self.settings = settings
        self.spark = spark
        self.lakehouse = Lakehouse(settings.paths.lakehouse)
        self.arrow: dict[str, pa.Table] = {}
        self.in_spark: set[str] = set()

    def table(self, name: str) -> pa.Table:
        if name not in self.arrow:
            self.arrow[name] = self._read(name)
        return self.arrow[name]

    def _read(self, name: str) -> pa.Table:
        if name.startswith(f"{LANDING_SCHEMA}."):
            entity = next(d.landing.entity for d in GRAPH.ordered() if d.landing and name in inputs(d))
            landing = self.settings.paths.landing
            con = duckdb.connect()
            register_landing(con, "lines", landing, landing_files(landing, entity))
            return con.sql("SELECT * FROM lines").to_arrow_table()
        dataset = GRAPH[name]
        if dataset.kind == "temporary_view":
            return duckdb_output(dataset, {upstream: self.table(upstream) for upstream in inputs(dataset)})
        return delta_rows(self.lakehouse.table(name))

    def to_spark(self, name: str) -> None:
        if name in self.in_spark:
            return
        schema, table = name.split(".", 1)
        self.spark.sql(f"CREATE DATABASE IF NOT EXISTS {schema}")
        frame = self.spark.createDataFrame(self.table(name))
        frame.write.mode("overwrite").saveAsTable(f"{schema}.{table}")
        self.in_spark.add(name)


def spark_output(spark: SparkSession, dataset: Dataset) -> pa.Table:
    batch_body = re.sub(r"STREAM\s*\(\s*([\w.]+)\s*\)", r"\1", dataset.sql)
    return spark.sql(batch_body).toArrow()


def normalized(value: object) -> object:
    if isinstance(value, Decimal):
        return round(float(value), 6)
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else round(value, 6)
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC).isoformat()
    if isinstance(value, list):
        return tuple(normalized(item) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((key, normalized(item)) for key, item in value.items()))
    return value


def rows(table: pa.Table) -> list[tuple]:
    return sorted((tuple(normalized(value) for value in row.values()) for row in table.to_pylist()), key=repr)


@pytest.fixture(scope="module")
def tables(built: Settings, spark: SparkSession) -> Inputs:
    return Inputs(built, spark)


@pytest.mark.parametrize("name", [dataset.name for dataset in GRAPH.ordered()])
def test_body_gives_the_same_rows_on_spark_and_duckdb(tables: Inputs, spark: SparkSession, name: str) -> None:
    dataset = GRAPH[name]
    upstream = {source: tables.table(source) for source in inputs(dataset)}
    for source in upstream:
        tables.to_spark(source)
    embedded = duckdb_output(dataset, upstream)
    databricks = spark_output(spark, dataset)
    assert [n.lower() for n in embedded.column_names] == [n.lower() for n in databricks.column_names]
    expected, actual = rows(databricks), rows(embedded)
    assert len(actual) == len(expected)
    different = [(s, d) for s, d in zip(expected, actual, strict=True) if s != d]
    assert different[:3] == [], f"{len(different)} of {len(expected)} rows differ"
    if name.startswith("reso_gold."):
        assert len(expected) > 0, f"{name} is empty: the comparison would prove nothing"
