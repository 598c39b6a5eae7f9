"""The baseline: the pipeline's own SQL bodies, in graph order, on a local Spark session (local[2]).

Every dataset's Spark SQL body runs as written (STREAM(x) read as x: a batch full refresh) over
tables Spark itself wrote for the datasets upstream; landing files are read as text lines and
split into the landing columns with Spark's JSON functions. An AUTO CDC target keeps the latest
event of each key that is not a delete, which is what the flow's full refresh leaves. Spark's
parallelism and I/O are its own; only the SQL is shared with the embedded engine.
"""

import re
import time
from pathlib import Path

from pipelines import load_graph
from pipelines.declaration import LANDING_SCHEMA
from pipelines.spark_sql import parse, references

LANDING_COLUMNS = """
  get_json_object(value, '$.entity') AS entity,
  get_json_object(value, '$.operation') AS operation,
  get_json_object(value, '$.sync_id') AS sync_id,
  get_json_object(value, '$.fetched_at') AS fetched_at,
  CASE WHEN get_json_object(value, '$.record') LIKE '{%' THEN get_json_object(value, '$.record') END AS record,
  CASE WHEN get_json_object(value, '$.record') IS NULL THEN value END AS _corrupt_record,
  source_file
"""


def _batch_sql(sql: str) -> str:
    return re.sub(r"STREAM\s*\(\s*([\w.]+)\s*\)", r"\1", sql)


def local_spark_session(name: str, warehouse: Path, *, partitions: int, driver_memory: str | None = None):
    """A Spark session on two local cores in UTC, its warehouse (and Derby's metastore) in `warehouse`;
    the parity tests and the baseline run the pipeline's SQL on it."""
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master("local[2]")
        .appName(name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.sql.warehouse.dir", str(warehouse))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={warehouse}")
    )
    if driver_memory:
        builder = builder.config("spark.driver.memory", driver_memory)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def run_on_spark(landing: Path, warehouse: Path) -> dict:
    session = local_spark_session("mls2-baseline", warehouse, partitions=4, driver_memory="8g")
    graph = load_graph()
    started = time.perf_counter()
    for schema in ("landing", "qobrix_bronze", "qobrix_silver", "reso_gold"):
        session.sql(f"CREATE DATABASE IF NOT EXISTS {schema}")
    for dataset in graph.ordered():
        reads, streams = references(parse(dataset.sql, origin=dataset.name))
        for name in reads | streams:
            if name.startswith(f"{LANDING_SCHEMA}.") and not session.catalog.tableExists(name):
                folder = landing / dataset.landing.entity
                files = [str(p) for p in sorted(folder.glob("*/*/*.jsonl*"))]
                if files:
                    lines = session.read.text(files).selectExpr("value", "input_file_name() AS source_file")
                else:
                    lines = session.createDataFrame([], "value string, source_file string")
                lines.where("trim(value) <> ''").selectExpr(
                    *LANDING_COLUMNS.strip().split(",\n")
                ).createOrReplaceTempView("landing_lines")
                session.sql(f"CREATE TABLE {name} AS SELECT * FROM landing_lines")
        body = session.sql(_batch_sql(dataset.sql))
        if dataset.kind == "temporary_view":
            body.write.mode("overwrite").saveAsTable(dataset.name)
            continue
        if dataset.kind == "auto_cdc":
            cdc = dataset.cdc
            body.createOrReplaceTempView("changes")
            keys = ", ".join(cdc.keys)
            dropped = set(cdc.except_column_list or ())
            columns = ", ".join(c for c in body.columns if c not in dropped)
            deletes = cdc.apply_as_deletes or "false"
            body = session.sql(
                f"SELECT {columns} FROM (SELECT *, row_number() OVER (PARTITION BY {keys} "
                f"ORDER BY {cdc.sequence_by} DESC) AS latest FROM changes) WHERE latest = 1 AND NOT ({deletes})"
            )
        body.write.mode("overwrite").saveAsTable(dataset.name)
    seconds = time.perf_counter() - started
    properties = session.table("reso_gold.property").count()
    media = session.table("reso_gold.media").count()
    session.stop()
    return {"seconds": seconds, "properties": properties, "media": media}
