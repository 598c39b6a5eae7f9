"""The Databricks Asset Bundle: every resource loads into the typed classes of `databricks-bundles`
(which refuse unknown fields and wrong types), every path it names exists, and the job runs the
sync, then the pipeline update, every 15 minutes (paused in `dev`)."""

from pathlib import Path
from typing import Any

import click
import pytest
import typer
import yaml
from databricks.bundles.apps import App
from databricks.bundles.dashboards import Dashboard
from databricks.bundles.jobs import Job
from databricks.bundles.pipelines import Pipeline
from databricks.bundles.schemas import Schema
from databricks.bundles.volumes import Volume
from typer.testing import CliRunner

from conf.cli import app
from conf.entities import entities
from conf.settings import setting_names
from pipelines.graph import load_graph
from pipelines.lakeflow.registration import LakeflowSettings

ROOT = Path(__file__).resolve().parent.parent
CLASSES = {
    "pipelines": Pipeline,
    "jobs": Job,
    "schemas": Schema,
    "volumes": Volume,
    "dashboards": Dashboard,
    "apps": App,
}


def bundle() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "databricks.yml").read_text())


def resources() -> dict[str, dict[str, tuple[dict, Path]]]:
    """Each resource by kind and key, with the file that declares it (paths in it are relative to it)."""
    found: dict[str, dict[str, tuple[dict, Path]]] = {}
    for pattern in bundle()["include"]:
        for path in sorted(ROOT.glob(pattern)):
            for kind, items in yaml.safe_load(path.read_text())["resources"].items():
                for key, spec in items.items():
                    assert key not in found.setdefault(kind, {}), f"{kind}.{key} declared twice"
                    found[kind][key] = (spec, path)
    return found


def test_the_bundle_includes_resource_files() -> None:
    assert bundle()["include"] == ["conf/databricks/*.yml"] and list(ROOT.glob("conf/databricks/*.yml"))
    assert set(bundle()["targets"]) == {"dev", "prod"}


def test_no_target_renames_the_schemas_the_datasets_name() -> None:
    """Development mode prefixes schema names per user, but every registered dataset names its schema."""
    schemas = {spec["name"] for spec, _ in resources()["schemas"].values()}
    assert {name.split(".")[0] for name in load_graph().datasets} <= schemas
    for name, target in bundle()["targets"].items():
        assert target.get("mode") != "development", name
        assert not (target.get("presets") or {}).get("name_prefix"), name


@pytest.mark.parametrize(
    ("kind", "key"), [(kind, key) for kind, items in resources().items() for key in items], ids=lambda v: str(v)
)
def test_every_resource_loads_into_its_typed_class(kind: str, key: str) -> None:
    spec, _ = resources()[kind][key]
    CLASSES[kind].from_dict(spec)


def test_every_path_the_bundle_names_exists() -> None:
    (pipeline, declared_in) = resources()["pipelines"]["mls2"]
    base = declared_in.parent
    assert (base / pipeline["root_path"]).resolve() == ROOT
    for library in pipeline["libraries"]:
        assert (base / library["file"]["path"]).is_file()
    wheel_dir = bundle()["artifacts"]["mls2_wheel"]["build"].split("--wheel-dir ")[1].split()[0]
    (job, job_file) = resources()["jobs"]["mls2_update"]
    wheels = [
        *pipeline["environment"]["dependencies"],
        *(lib["whl"] for t in job["tasks"] for lib in t.get("libraries", [])),
    ]
    for wheel in wheels:
        assert (job_file.parent / wheel).resolve().parent == (ROOT / wheel_dir).resolve(), wheel


def test_the_job_syncs_then_updates_the_pipeline_then_checks_integrity_every_15_minutes() -> None:
    job, _ = resources()["jobs"]["mls2_update"]
    tasks = {task["task_key"]: task for task in job["tasks"]}
    assert set(tasks) == {"sync", "pipeline_update", "integrity"}
    assert "depends_on" not in tasks["sync"]
    assert tasks["pipeline_update"]["depends_on"] == [{"task_key": "sync"}]
    assert tasks["integrity"]["depends_on"] == [{"task_key": "pipeline_update"}]
    assert tasks["pipeline_update"]["pipeline_task"]["pipeline_id"] == "${resources.pipelines.mls2.id}"
    wheel_task = tasks["sync"]["python_wheel_task"]
    assert (wheel_task["package_name"], wheel_task["entry_point"]) == ("mls2", "mls2")
    assert "mls2=conf.cli:app" in (ROOT / "setup.py").read_text()
    # The job's first parameter is an `mls2` command (`sync`, loaded when it runs): its help answers.
    shown = CliRunner().invoke(app, [wheel_task["parameters"][0], "--help"])
    assert shown.exit_code == 0 and "Usage: mls2 " + wheel_task["parameters"][0] in " ".join(shown.output.split())
    assert job["schedule"]["quartz_cron_expression"] == "0 0/15 * * * ?"
    assert job["max_concurrent_runs"] == 1
    assert bundle()["targets"]["dev"]["resources"]["jobs"]["mls2_update"]["schedule"]["pause_status"] == "PAUSED"


def test_the_sync_lands_where_the_pipeline_reads() -> None:
    pipeline, _ = resources()["pipelines"]["mls2"]
    job, _ = resources()["jobs"]["mls2_update"]
    (cluster,) = job["job_clusters"]
    landing = cluster["new_cluster"]["spark_env_vars"]["MLS2_LANDING_URL"]
    assert pipeline["configuration"]["mls2.landing"] == landing
    assert landing == "/Volumes/${var.catalog}/${resources.schemas.mls2_landing.name}/${resources.volumes.landing.name}"
    settings = LakeflowSettings.from_conf(pipeline["configuration"])
    assert settings.landing_format == "cloudFiles"


def test_the_sync_keeps_its_state_in_the_volume_outside_the_entity_folders() -> None:
    """A job cluster's disk is new each run: the sync restores and saves its state in the Volume, in a
    folder Auto Loader's entity patterns do not read, and every variable the task sets is a setting."""
    job, _ = resources()["jobs"]["mls2_update"]
    (cluster,) = job["job_clusters"]
    env = cluster["new_cluster"]["spark_env_vars"]
    assert env["MLS2_SYNC_STATE_URL"] == env["MLS2_LANDING_URL"] + "/_state/sync_state.sqlite"
    assert "_state" not in {entity.folder for entity in entities().values()}
    assert {name.lower() for name in env} <= setting_names()


def test_every_schema_the_graph_writes_is_in_the_bundle() -> None:
    declared = {spec["name"] for spec, _ in resources()["schemas"].values()}
    written = {dataset.schema for dataset in load_graph().ordered()} | {"mls2_system"}
    assert written <= declared


def test_the_integrity_task_runs_the_suite_on_spark_over_the_bundles_catalog() -> None:
    """Its parameters parse as `mls2`'s own: the suite on the Spark engine, over the catalog the
    pipeline publishes to; its Data Docs go to a Volume of the bundle, named by a setting."""
    job, _ = resources()["jobs"]["mls2_update"]
    (task,) = [t for t in job["tasks"] if t["task_key"] == "integrity"]
    wheel_task = task["python_wheel_task"]
    assert (wheel_task["package_name"], wheel_task["entry_point"]) == ("mls2", "mls2")
    group, command, *arguments = wheel_task["parameters"]
    mls2 = typer.main.get_command(app)
    integrity = mls2.get_command(click.Context(mls2), group)  # a group `mls2` loads when it runs
    context = integrity.commands[command].make_context(command, list(arguments))
    assert context.params == {"engine": "spark", "catalog": "${var.catalog}", "by_key": False}
    pipeline, _ = resources()["pipelines"]["mls2"]
    assert pipeline["catalog"] == "${var.catalog}"
    (cluster,) = job["job_clusters"]
    docs = cluster["new_cluster"]["spark_env_vars"]["MLS2_INTEGRITY_DIR"]
    volume_path = "${resources.schemas.mls2_system.name}/${resources.volumes.integrity_docs.name}"
    assert docs == "/Volumes/${var.catalog}/" + volume_path
    volume, _ = resources()["volumes"]["integrity_docs"]
    assert volume["schema_name"] == "${resources.schemas.mls2_system.name}"
