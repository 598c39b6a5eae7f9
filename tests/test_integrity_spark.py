"""The integrity suite on Spark (the Databricks job's integrity task), proven on local Spark: the
embedded lakehouse's tables, loaded into a Spark metastore under the names the Lakeflow pipeline
publishes, checked through GX's Spark datasource with the suites' SQL as written. It finds what
the embedded run finds, keeps its results in `mls2_system.integrity_results` with Spark, and names
the records of a fault.
"""

import shutil

import pytest
from deltalake import DeltaTable

from benchmarks.spark_baseline import local_spark_session
from conf.settings import Settings, load_settings
from expectations.engines import SparkEngine
from expectations.integrity import IntegrityError, IntegrityRun, run_integrity
from tests.conftest import delta_rows

pytestmark = pytest.mark.slow

NOT_PUBLISHED = {"mls2_system.event_log", "mls2_system.integrity_results"}
"""Tables of the embedded engine the Lakeflow pipeline does not publish (its event log is Databricks')."""


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory):
    warehouse = tmp_path_factory.mktemp("spark-integrity")
    session = local_spark_session("mls2-integrity", warehouse, partitions=2)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def data(defective_lakehouse: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A copy of the lakehouse (the embedded run below appends to it) and of its sync state."""
    root = tmp_path_factory.mktemp("integrity-spark") / "data"
    shutil.copytree(defective_lakehouse.paths.root, root)
    return load_settings(mls2_data_dir=root)


@pytest.fixture(scope="module")
def published(data: Settings, spark) -> Settings:
    """Every table the pipeline publishes, as a Spark table named as on Databricks."""
    for log in sorted(data.paths.lakehouse.glob("*/*/_delta_log")):
        name = f"{log.parent.parent.name}.{log.parent.name}"
        if name in NOT_PUBLISHED:
            continue
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {log.parent.parent.name}")
        spark.createDataFrame(delta_rows(DeltaTable(str(log.parent)))).write.mode("overwrite").saveAsTable(name)
    return data


def verdicts(run: IntegrityRun) -> dict[tuple[str, str], tuple[bool, tuple[str, ...]]]:
    return {(r.dataset, r.expectation): (r.success, tuple(sorted(r.unexpected_sample))) for r in run.results}


def test_spark_finds_what_the_embedded_engine_finds(published: Settings, spark) -> None:
    embedded = run_integrity(published, build_docs=False)
    on_spark = run_integrity(published, engine=SparkEngine(published, spark, "spark_catalog"))
    assert on_spark.engine == "spark" and not on_spark.critical_failures
    # The served snapshot is the embedded engine's: on Databricks the API reads gold itself.
    only_embedded = {key for key in verdicts(embedded) if key[0] in ("snapshot_tables", "snapshot_age")}
    assert only_embedded and not only_embedded & set(verdicts(on_spark))
    assert verdicts(on_spark) == {k: v for k, v in verdicts(embedded).items() if k not in only_embedded}
    assert [r for r in on_spark.results if r.suite == "reconciliation"], "reconciliation ran on Spark"
    kept = spark.table("mls2_system.integrity_results").where(f"run_id = '{on_spark.run_id}'")
    assert kept.count() == len(on_spark.results)
    assert {row.engine for row in kept.select("engine").collect()} == {"spark"}
    assert on_spark.docs is not None and "reconciliation" in on_spark.docs.read_text()


def test_a_fault_on_spark_fails_its_expectation_naming_the_record(published: Settings, spark) -> None:
    listing = spark.sql("SELECT * FROM reso_gold.property ORDER BY ListingKey LIMIT 1").first()
    spark.table("reso_gold.property").where(f"ListingKey <> '{listing.ListingKey}'").write.saveAsTable(
        "reso_gold.property_fault"
    )
    spark.sql("ALTER TABLE reso_gold.property RENAME TO reso_gold.property_good")
    try:
        spark.sql("ALTER TABLE reso_gold.property_fault RENAME TO reso_gold.property")
        run = run_integrity(published, engine=SparkEngine(published, spark), build_docs=False)
    finally:
        spark.sql("DROP TABLE IF EXISTS reso_gold.property")
        spark.sql("DROP TABLE IF EXISTS reso_gold.property_fault")
        spark.sql("ALTER TABLE reso_gold.property_good RENAME TO reso_gold.property")
    found = {f"{r.dataset}: {r.expectation}": r.unexpected_sample for r in run.critical_failures}
    assert found["landed_listings: expect_column_values_to_be_in_set(accounted_for)"] == (listing.OriginatingSystemKey,)


def test_tables_spark_cannot_read_are_failed_expectations_naming_them(published: Settings, spark) -> None:
    spark.sql("ALTER TABLE reso_gold.member RENAME TO reso_gold.member_away")
    try:
        run = run_integrity(published, engine=SparkEngine(published, spark), build_docs=False)
    finally:
        spark.sql("ALTER TABLE reso_gold.member_away RENAME TO reso_gold.member")
    unread = [r for r in run.results if r.dataset == "member"]
    assert unread and all(not r.success and "member" in r.message for r in unread)
    with pytest.raises(IntegrityError, match="no_such_catalog"):
        run_integrity(published, engine=SparkEngine(published, spark, "no_such_catalog"), build_docs=False)
