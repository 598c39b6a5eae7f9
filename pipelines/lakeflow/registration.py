"""Every declared dataset as `pyspark.pipelines` calls: the same graph the embedded engine runs.

- bronze: a temporary view reading the entity's landing files with Auto Loader (`cloudFiles`; plain
  JSON files on open-source Spark), and the streaming table of the declared body over it;
- AUTO CDC targets: a temporary view of the change rows carrying the expectations, a streaming
  table, and `create_auto_cdc_flow` with the declared keys, sequence, deletes and SCD type;
- materialized views and temporary views as such; a unique key keeps, of the rows sharing a key,
  the first by the incremental column (else the key) then by content, as the embedded engine does;
- expectations with their action, NULL counting as broken as on the embedded engine; the rows a
  `drop` rule removes are kept in quarantine, the way Databricks documents it: a second flow over
  the same rows keeps those that break a rule, with the rules they broke.

Open-source Spark has no expectations (`expect_all*`); there the datasets register without them.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pipelines.declaration import Dataset, Expectation, Graph
from pipelines.spark_sql import rename_relations

LANDING_COLUMNS = (
    "entity STRING, operation STRING, sync_id STRING, fetched_at STRING, record STRING, _corrupt_record STRING"
)
"""A landing line's fields; `record` declared a string keeps the record's JSON text whole."""
LANDING_FILES = "*/*/*.{jsonl.gz,jsonl}"
"""Landing pages under an entity's folder: `<entity>/<day>/<sync>/<page>.jsonl.gz` (or `.jsonl`, as earlier
versions landed them; Spark decompresses by the extension)."""
QUARANTINE = "mls2_system.quarantine"
EXPECTATION_DECORATORS = {"warn": "expect_all", "drop": "expect_all_or_drop", "fail": "expect_all_or_fail"}
LAYERS = {"qobrix_bronze": "bronze", "qobrix_silver": "silver", "reso_gold": "gold"}
CLAIMED = "mls2_claimed"
"""A column only while a unique key is enforced: whether a row before this one holds its key."""

LandingFormat = Literal["cloudFiles", "json"]


class LakeflowConfigError(ValueError):
    """The pipeline's configuration lacks a setting or holds a wrong one."""


@dataclass(frozen=True)
class LakeflowSettings:
    """The pipeline configuration (`configuration:` of the bundle's pipeline) the source reads."""

    landing: str
    """Root of the landing files: the landing Volume, e.g. `/Volumes/main/mls2_landing/landing`."""
    landing_format: LandingFormat = "cloudFiles"
    """`cloudFiles` (Auto Loader, Databricks) or `json` (open-source Spark's file stream)."""
    schema_location: str = ""
    """Where Auto Loader keeps each entity's schema; `<landing>/_schemas` when not given."""

    @classmethod
    def from_conf(cls, conf: Any) -> "LakeflowSettings":
        """From the session's configuration (`spark.conf`), naming the setting that is missing or wrong."""
        landing = (conf.get("mls2.landing", None) or "").rstrip("/")
        if not landing:
            raise LakeflowConfigError(
                "the pipeline configuration has no mls2.landing: set it to the landing Volume's path, "
                "e.g. /Volumes/<catalog>/<schema>/landing"
            )
        landing_format = conf.get("mls2.landing_format", None) or "cloudFiles"
        if landing_format not in ("cloudFiles", "json"):
            raise LakeflowConfigError(f"mls2.landing_format is {landing_format!r}: use cloudFiles or json")
        schema_location = (conf.get("mls2.schema_location", None) or f"{landing}/_schemas").rstrip("/")
        return cls(landing, landing_format, schema_location)


def condition(expectation: Expectation) -> str:
    """The constraint as registered: a NULL result counts as broken, as on the embedded engine."""
    return f"coalesce(({expectation.constraint}), false)"


def view_name(name: str) -> str:
    """A temporary view's name: pipelines keep views unqualified, so `schema.table` becomes `schema__table`."""
    return name.replace(".", "__")


def quarantine_name(dataset: Dataset) -> str:
    """Where a materialized view's dropped rows are kept (a streaming dataset's go to `QUARANTINE`)."""
    return f"mls2_system.quarantine_{view_name(dataset.name)}"


def drops(dataset: Dataset) -> list[Expectation]:
    return [e for e in dataset.expectations if e.on_violation == "drop"]


def quarantine_sql(dataset: Dataset, rows: str) -> str:
    """The rows of `rows` a drop rule removes, with every rule each broke (the embedded quarantine's shape)."""
    broken = ", ".join(f"CASE WHEN NOT {condition(e)} THEN '{e.name}' END" for e in dataset.expectations)
    dropped = " OR ".join(f"NOT {condition(e)}" for e in drops(dataset))
    return (
        f"SELECT '{dataset.name}' AS dataset, filter(array({broken}), rule -> rule IS NOT NULL) AS broken_rules, "
        f"to_json(struct(rows.*)) AS record, current_timestamp() AS quarantined_at FROM ({rows}) AS rows "
        f"WHERE {dropped}"
    )


class Registrar:
    """Registers a graph with a `pyspark.pipelines` module (`dp`; Databricks' `dlt` alike)."""

    def __init__(self, dp: Any, spark: Any, graph: Graph, settings: LakeflowSettings) -> None:
        self.dp, self.spark, self.graph, self.settings = dp, spark, graph, settings
        self.expectations_supported = all(hasattr(dp, name) for name in EXPECTATION_DECORATORS.values())
        self.relations = {
            name: view_name(name)
            for dataset in graph.ordered()
            for name in (dataset.name if dataset.kind == "temporary_view" else None, dataset.landing_relation)
            if name
        }

    def register(self) -> None:
        if any(drops(d) for d in self.graph.ordered() if d.kind != "materialized_view"):
            self.dp.create_streaming_table(
                QUARANTINE,
                comment="Rows a drop expectation removed from a streaming dataset, with the rules each broke.",
                table_properties={"quality": "quarantine"},
            )
        for dataset in self.graph.ordered():
            {
                "streaming_table": self.streaming_table,
                "auto_cdc": self.auto_cdc,
                "materialized_view": self.materialized_view,
                "temporary_view": self.temporary_view,
            }[dataset.kind](dataset)

    def body(self, dataset: Dataset) -> str:
        """The declared body, reading temporary views and landing relations by their registered names."""
        return rename_relations(dataset.sql, self.relations, origin=dataset.name)

    def query(self, sql: str) -> Callable[[], Any]:
        def rows() -> Any:
            return self.spark.sql(sql)

        return rows

    def expect(self, dataset: Dataset, function: Callable[[], Any]) -> Callable[[], Any]:
        if not self.expectations_supported:
            return function
        for action, decorator in EXPECTATION_DECORATORS.items():
            rules = {e.name: condition(e) for e in dataset.expectations if e.on_violation == action}
            if rules:
                function = getattr(self.dp, decorator)(rules)(function)
        return function

    @staticmethod
    def properties(dataset: Dataset) -> dict[str, str]:
        return {"quality": LAYERS[dataset.schema]}

    def quarantine_stream(self, dataset: Dataset, rows: str) -> None:
        """A flow keeping the rows of a streaming dataset that a drop rule removes."""
        if drops(dataset):
            self.dp.append_flow(target=QUARANTINE, name=f"quarantine_{view_name(dataset.name)}")(
                self.query(quarantine_sql(dataset, rows))
            )

    def landing(self, folder: str) -> Callable[[], Any]:
        """The lines of an entity's landing files, as the embedded engine's `landing.<entity>` relation."""
        settings = self.settings

        def lines() -> Any:
            reader = self.spark.readStream.schema(LANDING_COLUMNS).option(
                "columnNameOfCorruptRecord", "_corrupt_record"
            )
            if settings.landing_format == "cloudFiles":
                reader = (
                    reader.format("cloudFiles")
                    .option("cloudFiles.format", "json")
                    .option("cloudFiles.schemaLocation", f"{settings.schema_location}/{folder}")
                    .option("cloudFiles.schemaEvolutionMode", "rescue")
                    .option("rescuedDataColumn", "_rescued_data")
                )
            else:
                reader = reader.format("json")
            return reader.load(f"{settings.landing}/{folder}/{LANDING_FILES}").selectExpr(
                "*", f"regexp_extract(_metadata.file_path, '({folder}/[^/]+/[^/]+/[^/]+)$', 1) AS source_file"
            )

        return lines

    def streaming_table(self, dataset: Dataset) -> None:
        if dataset.landing:
            self.dp.temporary_view(
                name=self.relations[dataset.landing_relation],
                comment=f"Landing files of Qobrix {dataset.landing.entity}.",
            )(self.landing(dataset.landing.entity))
        body = self.body(dataset)
        self.dp.table(name=dataset.name, comment=dataset.comment, table_properties=self.properties(dataset))(
            self.expect(dataset, self.query(body))
        )
        self.quarantine_stream(dataset, body)

    def temporary_view(self, dataset: Dataset) -> None:
        self.dp.temporary_view(name=self.relations[dataset.name], comment=dataset.comment)(
            self.expect(dataset, self.query(self.body(dataset)))
        )

    def auto_cdc(self, dataset: Dataset) -> None:
        cdc = dataset.cdc
        assert cdc is not None  # validated: an auto_cdc dataset has its settings
        changes = f"{view_name(dataset.name)}__changes"
        body = self.body(dataset)
        self.dp.temporary_view(name=changes, comment=f"The change rows AUTO CDC applies to {dataset.name}.")(
            self.expect(dataset, self.query(body))
        )
        self.quarantine_stream(dataset, body)
        self.dp.create_streaming_table(dataset.name, comment=dataset.comment, table_properties=self.properties(dataset))
        self.dp.create_auto_cdc_flow(
            target=dataset.name,
            source=changes,
            keys=list(cdc.keys),
            sequence_by=cdc.sequence_by,
            apply_as_deletes=cdc.apply_as_deletes,
            column_list=list(cdc.column_list) if cdc.column_list else None,
            except_column_list=list(cdc.except_column_list) if cdc.except_column_list else None,
            stored_as_scd_type=cdc.stored_as_scd_type,
            track_history_column_list=list(cdc.track_history_column_list) if cdc.track_history_column_list else None,
            track_history_except_column_list=(
                list(cdc.track_history_except_column_list) if cdc.track_history_except_column_list else None
            ),
        )

    def materialized_view(self, dataset: Dataset) -> None:
        body = self.body(dataset)
        publish = self.dp.materialized_view(
            name=dataset.name, comment=dataset.comment, table_properties=self.properties(dataset)
        )
        if not dataset.unique_key:
            publish(self.expect(dataset, self.query(body)))
            if drops(dataset):
                self.dp.materialized_view(name=quarantine_name(dataset), comment=f"Rows dropped from {dataset.name}.")(
                    self.query(quarantine_sql(dataset, body))
                )
            return
        # The expectations first, on the rows as computed; then, among the rows they keep, the unique key.
        checked = f"{view_name(dataset.name)}__checked"
        self.dp.temporary_view(name=checked, comment=f"{dataset.name} before its unique key is enforced.")(
            self.expect(dataset, self.query(body))
        )
        key = f"`{dataset.unique_key}`"
        order = f"`{dataset.incremental.column}`" if dataset.incremental else key
        claim = f"{key} IS NOT NULL AND row_number() OVER (PARTITION BY {key} ORDER BY {order}, to_json(struct(*))) > 1"

        ranked = f"SELECT *, {claim} AS {CLAIMED} FROM {checked}"
        publish(self.query(f"SELECT * EXCEPT ({CLAIMED}) FROM ({ranked}) WHERE NOT {CLAIMED}"))
        losers = (
            f"SELECT '{dataset.name}' AS dataset, array('{dataset.unique_rule}') AS broken_rules, "
            "to_json(struct(rows.*)) AS record, current_timestamp() AS quarantined_at "
            f"FROM (SELECT * EXCEPT ({CLAIMED}) FROM ({ranked}) WHERE {CLAIMED}) AS rows"
        )
        self.dp.materialized_view(name=quarantine_name(dataset), comment=f"Rows dropped from {dataset.name}.")(
            self.query(f"{quarantine_sql(dataset, body)} UNION ALL {losers}" if drops(dataset) else losers)
        )


def register_graph(dp: Any, spark: Any, graph: Graph, settings: LakeflowSettings) -> None:
    """Register every dataset of `graph` with `dp` (`pyspark.pipelines`, or Databricks' `dlt`)."""
    Registrar(dp, spark, graph, settings).register()
