"""The Lakeflow source run by open-source Spark Declarative Pipelines (`spark-pipelines`, pyspark 4.3).

A dry run registers every dataset and analyzes every body against its inputs. Open-source Spark
then runs what it can of the graph: bronze, from the same landing files the embedded engine read,
and the rows are compared. (AUTO CDC needs a MERGE-capable format, Delta, whose Spark connector
comes from Maven; expectations and Auto Loader exist only on Databricks.)
"""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from deltalake import DeltaTable

import pipelines.lakeflow
from pipelines.graph import load_graph
from tests.conftest import PublishedGold

pytestmark = pytest.mark.slow

SCHEMAS = ("qobrix_bronze", "qobrix_silver", "reso_gold", "mls2_system")
BRONZE = [dataset.name for dataset in load_graph().ordered() if dataset.landing]
COMPARED = ("entity", "operation", "sync_id", "record_key", "is_malformed", "source_file")
STAMPS = ("fetched_at", "record_modified")
SOURCE = Path(pipelines.lakeflow.__file__).with_name("pipeline.py")
SESSION = """
from pyspark.sql import SparkSession
session = (
    SparkSession.builder.master("local[1]")
    .config("spark.sql.catalogImplementation", "hive")
    .config("spark.sql.session.timeZone", "UTC")
    .config("spark.ui.enabled", "false")
    .config("spark.sql.warehouse.dir", {warehouse!r})
    .config("spark.driver.extraJavaOptions", "-Dderby.system.home={warehouse}")
    .getOrCreate()
)
"""


def on_spark(warehouse: Path, script: str) -> str:
    """Run `script` with `session`, a local Spark session on the metastore in `warehouse`, in its own
    process (the suite's other Spark sessions use other metastores); what it prints."""
    result = subprocess.run(
        [sys.executable, "-c", SESSION.format(warehouse=str(warehouse)) + script],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


BROKEN_BODY = """
from dataclasses import replace

import pipelines.graph

graph = pipelines.graph.load_graph()
office = graph["reso_gold.office"]
graph.datasets[office.name] = replace(office, sql=office.sql.replace("SELECT", "SELECT no_such_column,", 1))
pipelines.graph.load_graph = lambda: graph
"""


def spark_pipelines(
    project: Path, landing: Path, *command: str, source: str | None = None
) -> subprocess.CompletedProcess:
    """Run `spark-pipelines` on the Lakeflow source in `project`, over `landing`, with a Derby
    metastore there whose schemas exist (a Databricks bundle creates them; open-source Spark does not)."""
    warehouse = project / "warehouse"
    if not warehouse.exists():
        (project / "transformations").mkdir(parents=True)
        (project / "transformations" / "pipeline.py").write_text(source or SOURCE.read_text())
        (project / "spark-pipeline.yml").write_text(
            f"name: mls2\nstorage: file://{project}/storage\n"
            f"configuration:\n  mls2.landing: {landing}\n  mls2.landing_format: json\n"
            "  spark.sql.session.timeZone: UTC\n"
            "libraries:\n  - glob:\n      include: transformations/**\n"
        )
        on_spark(warehouse, "".join(f"session.sql('CREATE SCHEMA {schema}')\n" for schema in SCHEMAS))
    bin_dir = Path(sys.executable).parent
    settings = {
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(warehouse),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={warehouse}",
    }
    return subprocess.run(
        [str(bin_dir / "spark-pipelines"), *(f"--conf={key}={value}" for key, value in settings.items()), *command],
        cwd=project,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYSPARK_PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_every_dataset_registers_and_every_body_analyzes(tmp_path: Path, published_gold: PublishedGold) -> None:
    result = spark_pipelines(tmp_path, published_gold.settings.paths.landing, "dry-run")
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Run is COMPLETED" in result.stdout + result.stderr


def test_a_body_that_reads_a_missing_column_fails_the_dry_run(tmp_path: Path, published_gold: PublishedGold) -> None:
    """The dry run analyzes bodies: one naming a column its input lacks fails, naming the dataset."""
    result = spark_pipelines(
        tmp_path, published_gold.settings.paths.landing, "dry-run", source=BROKEN_BODY + SOURCE.read_text()
    )
    assert result.returncode != 0
    assert "reso_gold__office__checked" in result.stdout + result.stderr


def test_bronze_on_spark_holds_the_embedded_engines_rows(tmp_path: Path, published_gold: PublishedGold) -> None:
    landing = published_gold.settings.paths.landing
    result = spark_pipelines(tmp_path, landing, "run", "--refresh", ",".join(BRONZE))
    assert result.returncode == 0, result.stderr[-4000:]
    stamps = ", ".join(f"date_format({c}, \"yyyy-MM-dd'T'HH:mm:ss.SSSSSS\") AS {c}" for c in STAMPS)
    queries = [f"SELECT '{name}' AS dataset, {', '.join(COMPARED)}, payload, {stamps} FROM {name}" for name in BRONZE]
    printed = on_spark(
        tmp_path / "warehouse",
        "".join(f"for row in session.sql({query!r}).toJSON().collect(): print(row)\n" for query in queries),
    )
    from_spark: dict[str, list[dict]] = {name: [] for name in BRONZE}
    for row in (json.loads(line) for line in printed.splitlines() if line.startswith("{")):
        from_spark[row.pop("dataset")].append(row)
    for name in BRONZE:
        embedded = (
            DeltaTable(str(published_gold.settings.paths.lakehouse / name.replace(".", "/")))
            .to_pyarrow_table()
            .to_pylist()
        )
        assert sorted(map(comparable, from_spark[name])) == sorted(map(comparable, embedded)), name


def comparable(row: dict) -> tuple:
    """A bronze row as both engines must agree on it: the payload as JSON (the text's spacing may
    differ), instants in UTC to the microsecond."""
    payload = row["payload"] if row["is_malformed"] else json.loads(row["payload"])
    stamps = [row.get(column) for column in STAMPS]
    stamps = [s.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") if isinstance(s, datetime) else s for s in stamps]
    return (*(row.get(column) for column in COMPARED), *stamps, json.dumps(payload, sort_keys=True))
