"""The API as a Databricks App: the bundle's App runs an `mls2` command that exists, with settings the
product reads, on the gold schema the pipeline writes; the App's service principal reaches the SQL
warehouse through the SDK's OAuth (tested against a local server answering as a workspace does)."""

import re
from pathlib import Path

import pytest
from databricks.bundles.apps import App
from typer.testing import CliRunner

from conf.cli import app
from conf.settings import load_settings, setting_names
from graphql_odata.backends.base import BackendUnavailable
from graphql_odata.backends.databricks import sdk_credentials
from tests.databricks_workspace import CLIENT_ID, CLIENT_SECRET, TOKEN, FakeWorkspace
from tests.test_databricks_bundle import ROOT, resources

APP_RUNTIME = {"DATABRICKS_APP_PORT": "8123", "DATABRICKS_HOST": "adb-1.azuredatabricks.net",
               "DATABRICKS_CLIENT_ID": CLIENT_ID, "DATABRICKS_CLIENT_SECRET": CLIENT_SECRET}  # fmt: skip
"""What the Apps runtime sets in every App's environment."""
RESOLVED = {"${var.catalog}": "mls2", "${resources.schemas.reso_gold.name}": "reso_gold"}


def the_app() -> tuple[dict, Path]:
    return resources()["apps"]["mls2_api"]


def app_environment() -> dict[str, str]:
    """The App's environment as the runtime makes it: its variables with the bundle's references
    resolved, a resource's id for `value_from`, and the runtime's own."""
    spec, _ = the_app()
    warehouse_ids = {r["name"]: "wh-abc123" for r in spec["resources"] if "sql_warehouse" in r}
    env = {}
    for var in spec["config"]["env"]:
        value = var["value"] if "value" in var else warehouse_ids[var["value_from"]]
        for reference, resolved in RESOLVED.items():
            value = value.replace(reference, resolved)
        env[var["name"]] = value
    return {**APP_RUNTIME, **env}


def test_the_app_loads_into_its_typed_class_and_serves_its_source_folder() -> None:
    spec, declared_in = the_app()
    App.from_dict(spec)
    source = (declared_in.parent / spec["source_code_path"]).resolve()
    assert source == ROOT
    requirements = [line for line in (source / "requirements.txt").read_text().splitlines() if line[:1] not in "#"]
    assert requirements == [".[databricks]"], "the App installs this package with its Databricks extra"
    assert re.search(r'"databricks": \[[^]]*"databricks-sql-connector', (ROOT / "setup.py").read_text())


def test_the_app_runs_an_mls2_command_that_exists() -> None:
    command = the_app()[0]["config"]["command"]
    assert command[:2] == ["mls2", "serve"]
    result = CliRunner().invoke(app, [*command[1:], "--help"])
    assert result.exit_code == 0 and "--host" in result.output


def test_every_app_variable_is_a_setting_and_reads_the_pipelines_gold(monkeypatch: pytest.MonkeyPatch) -> None:
    spec, _ = the_app()
    names = {var["name"].lower() for var in spec["config"]["env"]}
    assert names <= setting_names(), f"not settings: {names - setting_names()}"
    [warehouse] = [r for r in spec["resources"] if "sql_warehouse" in r]
    assert warehouse["sql_warehouse"] == {"id": "${var.warehouse_id}", "permission": "CAN_USE"}
    pipeline = resources()["pipelines"]["mls2"][0]
    gold = next(v["value"] for v in spec["config"]["env"] if v["name"] == "MLS2_GOLD_SCHEMA")
    assert gold == f"{pipeline['catalog']}.{pipeline['schema']}"
    grants = resources()["schemas"]["reso_gold"][0]["grants"]
    assert {"principal": "${resources.apps.mls2_api.service_principal_client_id}",
            "privileges": ["USE_SCHEMA", "SELECT"]} in grants  # fmt: skip
    for name, value in app_environment().items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.mls2_api_backend == "databricks" and settings.mls2_gold_schema == "mls2.reso_gold"
    assert settings.mls2_api_port == 8123, "the App's port"
    assert settings.require_databricks() == ("adb-1.azuredatabricks.net", "/sql/1.0/warehouses/wh-abc123", None)


def test_the_apps_service_principal_signs_in_with_oauth(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a token the warehouse connection authenticates as the SDK does: the App's client id and
    secret traded for a token at the workspace's OAuth endpoint, sent as a bearer header."""
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", "/nonexistent/databrickscfg")
    monkeypatch.delenv("DATABRICKS_TOKEN", raising=False)
    monkeypatch.setenv("DATABRICKS_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("DATABRICKS_CLIENT_SECRET", CLIENT_SECRET)
    with FakeWorkspace() as workspace:
        headers = sdk_credentials(workspace.host)()()
        [token_request] = [r for r in workspace.requests if r.path == "/oidc/v1/token"]
    assert headers == {"Authorization": f"Bearer {TOKEN}"}
    assert token_request.body["grant_type"] == "client_credentials"


def test_without_any_credentials_the_server_does_not_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", "/nonexistent/databrickscfg")
    for name in ("DATABRICKS_TOKEN", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET", "DATABRICKS_CONFIG_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with FakeWorkspace() as workspace, pytest.raises(BackendUnavailable) as refused:
        sdk_credentials(workspace.host)
    assert f"no DATABRICKS_TOKEN and no other Databricks credentials for {workspace.host}" in str(refused.value)


def test_a_wrong_client_secret_is_refused_when_the_first_connection_asks_for_a_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", "/nonexistent/databrickscfg")
    monkeypatch.delenv("DATABRICKS_TOKEN", raising=False)
    monkeypatch.setenv("DATABRICKS_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("DATABRICKS_CLIENT_SECRET", "stolen")
    with FakeWorkspace() as workspace:
        headers = sdk_credentials(workspace.host)()
        with pytest.raises(Exception, match=r"Client authentication failed|invalid_client"):
            headers()
