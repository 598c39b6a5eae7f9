"""What the Lakeflow source registers, dataset by dataset, against the declaration.

Databricks' `pyspark.pipelines` surface (dataset decorators, `create_streaming_table`,
`create_auto_cdc_flow`, `append_flow`, `expect_all*`) is played by a recorder, since expectations
and Auto Loader exist only on Databricks; `spark-pipelines` runs the same source for real in
`tests/test_lakeflow_spark.py`.
"""

from collections.abc import Callable
from typing import Any

import pytest

from pipelines.declaration import Dataset
from pipelines.graph import load_graph
from pipelines.lakeflow.registration import (
    LANDING_COLUMNS,
    QUARANTINE,
    LakeflowConfigError,
    LakeflowSettings,
    register_graph,
)
from pipelines.spark_sql import rename_relations

SETTINGS = LakeflowSettings("/Volumes/main/mls2/landing", "cloudFiles", "/Volumes/main/mls2/landing/_schemas")


class RecordingReader:
    """A stream reader that records its settings; `selectExpr` ends the chain with all of them."""

    def __init__(self) -> None:
        self.settings: dict[str, Any] = {"options": {}}

    def format(self, name: str) -> "RecordingReader":
        self.settings["format"] = name
        return self

    def option(self, key: str, value: str) -> "RecordingReader":
        self.settings["options"][key] = value
        return self

    def schema(self, schema: str) -> "RecordingReader":
        self.settings["schema"] = schema
        return self

    def load(self, path: str) -> "RecordingReader":
        self.settings["path"] = path
        return self

    def selectExpr(self, *expressions: str) -> dict[str, Any]:
        return {**self.settings, "columns": expressions}


class RecordingSpark:
    """A session whose `sql` returns the text it was given and whose stream readers record their settings."""

    @property
    def readStream(self) -> RecordingReader:
        return RecordingReader()

    def sql(self, text: str) -> str:
        return text


class RecordingPipelines:
    """Databricks' `pyspark.pipelines` (`dlt`) calls, kept as data."""

    def __init__(self, *, with_expectations: bool = True) -> None:
        self.elements: dict[str, dict[str, Any]] = {}
        self.cdc_flows: dict[str, dict[str, Any]] = {}
        self.append_flows: dict[str, dict[str, Any]] = {}
        if with_expectations:
            self.expect_all = self._expect("warn")
            self.expect_all_or_drop = self._expect("drop")
            self.expect_all_or_fail = self._expect("fail")

    def _element(self, kind: str, name: str, **options: Any) -> Callable[[Callable], None]:
        assert name not in self.elements, f"{name} registered twice"

        def register(function: Callable) -> None:
            self.elements[name] = {
                "kind": kind,
                "query": function(),
                "expectations": getattr(function, "expectations", {}),
                **options,
            }

        return register

    def table(self, *, name: str, comment: str = "", table_properties: dict | None = None) -> Callable:
        return self._element("table", name, comment=comment, table_properties=table_properties)

    def materialized_view(self, *, name: str, comment: str = "", table_properties: dict | None = None) -> Callable:
        return self._element("materialized_view", name, comment=comment, table_properties=table_properties)

    def temporary_view(self, *, name: str, comment: str = "") -> Callable:
        return self._element("temporary_view", name, comment=comment)

    def create_streaming_table(self, name: str, *, comment: str = "", table_properties: dict | None = None) -> None:
        assert name not in self.elements, f"{name} registered twice"
        self.elements[name] = {"kind": "streaming_table", "comment": comment, "table_properties": table_properties}

    def create_auto_cdc_flow(self, **settings: Any) -> None:
        self.cdc_flows[settings["target"]] = settings

    def append_flow(self, *, target: str, name: str) -> Callable[[Callable], None]:
        def register(function: Callable) -> None:
            self.append_flows[name] = {"target": target, "query": function()}

        return register

    @staticmethod
    def _expect(action: str) -> Callable[[dict[str, str]], Callable]:
        def decorator(rules: dict[str, str]) -> Callable[[Callable], Callable]:
            def decorate(function: Callable) -> Callable:
                def query() -> Any:
                    return function()

                query.expectations = {  # type: ignore[attr-defined]
                    **getattr(function, "expectations", {}),
                    **{name: (action, constraint) for name, constraint in rules.items()},
                }
                return query

            return decorate

        return decorator


@pytest.fixture(scope="module")
def registered() -> RecordingPipelines:
    pipelines = RecordingPipelines()
    register_graph(pipelines, RecordingSpark(), load_graph(), SETTINGS)
    return pipelines


def view(name: str) -> str:
    return name.replace(".", "__")


def body(dataset: Dataset) -> str:
    graph = load_graph()
    renamed = {d.name: view(d.name) for d in graph.ordered() if d.kind == "temporary_view"}
    renamed.update({name: view(name) for name in dataset.streams if name.startswith("landing.")})
    return rename_relations(dataset.sql, renamed, origin=dataset.name)


def declared_rules(dataset: Dataset) -> dict[str, tuple[str, str]]:
    return {e.name: (e.on_violation, f"coalesce(({e.constraint}), false)") for e in dataset.expectations}


def where_rules_are(dataset: Dataset) -> str:
    """The element that carries a dataset's expectations."""
    if dataset.kind == "auto_cdc":
        return f"{view(dataset.name)}__changes"
    if dataset.kind == "materialized_view" and dataset.unique_key:
        return f"{view(dataset.name)}__checked"
    if dataset.kind == "temporary_view":
        return view(dataset.name)
    return dataset.name


DATASETS = [dataset.name for dataset in load_graph().ordered()]


@pytest.mark.parametrize("name", DATASETS)
def test_every_dataset_registers_as_declared(registered: RecordingPipelines, name: str) -> None:
    dataset = load_graph()[name]
    rules_at = registered.elements[where_rules_are(dataset)]
    assert rules_at["expectations"] == declared_rules(dataset)
    if dataset.kind == "temporary_view":
        assert registered.elements[view(name)]["kind"] == "temporary_view"
        assert registered.elements[view(name)]["query"] == body(dataset)
        return
    element = registered.elements[name]
    assert element["comment"] == dataset.comment
    assert element["table_properties"] == {
        "quality": {"qobrix_bronze": "bronze", "qobrix_silver": "silver"}.get(dataset.schema, "gold")
    }
    if dataset.kind == "streaming_table":
        assert element["kind"] == "table" and element["query"] == body(dataset)
    elif dataset.kind == "auto_cdc":
        assert element["kind"] == "streaming_table" and rules_at["query"] == body(dataset)
    else:
        assert element["kind"] == "materialized_view"
        assert body(dataset) in (element["query"] if not dataset.unique_key else rules_at["query"])


@pytest.mark.parametrize("name", [d.name for d in load_graph().ordered() if d.kind == "auto_cdc"])
def test_auto_cdc_flows_carry_every_declared_setting(registered: RecordingPipelines, name: str) -> None:
    cdc = load_graph()[name].cdc
    assert registered.cdc_flows[name] == {
        "target": name,
        "source": f"{view(name)}__changes",
        "keys": list(cdc.keys),
        "sequence_by": cdc.sequence_by,
        "apply_as_deletes": cdc.apply_as_deletes,
        "column_list": list(cdc.column_list) if cdc.column_list else None,
        "except_column_list": list(cdc.except_column_list) if cdc.except_column_list else None,
        "stored_as_scd_type": cdc.stored_as_scd_type,
        "track_history_column_list": list(cdc.track_history_column_list) if cdc.track_history_column_list else None,
        "track_history_except_column_list": (
            list(cdc.track_history_except_column_list) if cdc.track_history_except_column_list else None
        ),
    }
    assert load_graph()["qobrix_silver.property_history"].cdc.stored_as_scd_type == 2


@pytest.mark.parametrize("name", [d.name for d in load_graph().ordered() if d.landing])
def test_bronze_reads_its_landing_folder_with_auto_loader(registered: RecordingPipelines, name: str) -> None:
    dataset = load_graph()[name]
    folder = dataset.landing.entity
    (relation,) = [stream for stream in dataset.streams if stream.startswith("landing.")]
    reader = registered.elements[view(relation)]["query"]
    assert reader["format"] == "cloudFiles"
    assert reader["options"] == {
        "columnNameOfCorruptRecord": "_corrupt_record",
        "cloudFiles.format": "json",
        "cloudFiles.schemaLocation": f"/Volumes/main/mls2/landing/_schemas/{folder}",
        "cloudFiles.schemaEvolutionMode": "rescue",
        "rescuedDataColumn": "_rescued_data",
    }
    assert reader["schema"] == LANDING_COLUMNS and "_corrupt_record STRING" in LANDING_COLUMNS
    assert reader["path"] == f"/Volumes/main/mls2/landing/{folder}/*/*/*.{{jsonl.gz,jsonl}}"
    assert reader["columns"] == (
        "*",
        f"regexp_extract(_metadata.file_path, '({folder}/[^/]+/[^/]+/[^/]+)$', 1) AS source_file",
    )
    assert f"STREAM({view(relation)})" in registered.elements[name]["query"]


def test_dropped_rows_are_kept_in_quarantine(registered: RecordingPipelines) -> None:
    """Streaming datasets append to one quarantine table; a materialized view has its own."""
    assert registered.elements[QUARANTINE]["kind"] == "streaming_table"
    for dataset in load_graph().ordered():
        drops = [e for e in dataset.expectations if e.on_violation == "drop"]
        quarantine_view = registered.elements.get(f"mls2_system.quarantine_{view(dataset.name)}")
        flow = registered.append_flows.get(f"quarantine_{view(dataset.name)}")
        if dataset.kind == "materialized_view" and (drops or dataset.unique_key):
            assert quarantine_view["kind"] == "materialized_view" and flow is None
            query = quarantine_view["query"]
        elif drops:
            assert flow["target"] == QUARANTINE and quarantine_view is None
            query = flow["query"]
        else:
            assert flow is None and quarantine_view is None, dataset.name
            continue
        for expectation in drops:
            assert f"NOT coalesce(({expectation.constraint}), false)" in query
        if dataset.unique_key:
            assert f"'{dataset.unique_key}_unique'" in query


def test_without_expectations_the_same_datasets_register_with_none() -> None:
    """Open-source Spark has no `expect_all*`: the source registers the graph without them."""
    plain = RecordingPipelines(with_expectations=False)
    register_graph(plain, RecordingSpark(), load_graph(), SETTINGS)
    full = RecordingPipelines()
    register_graph(full, RecordingSpark(), load_graph(), SETTINGS)
    assert plain.elements.keys() == full.elements.keys()
    assert all(not element.get("expectations") for element in plain.elements.values())


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({}, "the pipeline configuration has no mls2.landing"),
        ({"mls2.landing": "/x", "mls2.landing_format": "csv"}, "mls2.landing_format is 'csv': use cloudFiles or json"),
    ],
)
def test_a_missing_or_wrong_setting_is_named(conf: dict[str, str], message: str) -> None:
    with pytest.raises(LakeflowConfigError, match=message):
        LakeflowSettings.from_conf(conf)


def test_settings_default_the_schema_location_under_the_landing_root() -> None:
    settings = LakeflowSettings.from_conf({"mls2.landing": "/Volumes/c/s/landing/"})
    assert settings == LakeflowSettings("/Volumes/c/s/landing", "cloudFiles", "/Volumes/c/s/landing/_schemas")
