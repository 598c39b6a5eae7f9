"""Sandbox -> sync -> pipeline -> HTTP API, through real servers and the real `mls2 demo` process."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
import requests

from conf.settings import DataPaths, Settings, load_settings
from graphql_odata.main import create_app
from graphql_odata.security.clients import ClientRegistry
from ingestion.sandbox import BackgroundServer, SandboxServer, SandboxWorld
from pipelines import load_graph, run_update
from pipelines._engine.lakehouse import Lakehouse
from pipelines.ui.runs import RunLog
from tests.bounded import wait_until
from tests.conftest import PublishedGold, register_test_client, sandbox_records
from tests.pinned_values import EXPECTED

pytestmark = pytest.mark.slow

STATUS = EXPECTED["Property", "StandardStatus"]
CHECKED = "ListingKey,ListPrice,StandardStatus,ModificationTimestamp"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def expected_property(record: dict) -> dict:
    """What gold Property must say about one sandbox record."""
    return {
        "ListingKey": f"QOBRIX_{record['id']}",
        "ListPrice": record["list_selling_price_amount"],
        "StandardStatus": STATUS.get(record["status"]),
        "ModificationTimestamp": record["modified"].replace("+00:00", "Z"),
    }


def wait_for(url: str, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args} exited early with {process.returncode}: {process.stdout.read()}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:  # refused, or accepted by a supervisor before its workers answer
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def test_demo_command_serves_the_sandbox_data(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "MLS2_DATA_DIR": str(tmp_path / "demo"),
        "MLS2_API_PORT": str(port),
        "MLS2_SANDBOX_PORT": "0",
        "MLS2_SANDBOX_PROPERTIES": "300",
        "MLS2_SANDBOX_SEED": "11",
    }
    mls2 = Path(sys.executable).with_name("mls2")
    process = subprocess.Popen(
        [str(mls2), "demo"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    try:
        wait_for(f"http://127.0.0.1:{port}/health", process)
        url = f"http://127.0.0.1:{port}/odata/Property"
        assert requests.get(url, timeout=10).status_code == 401
        # The token recipe the demo printed works as printed.
        recipe = next(line for line in lines if "client_secret=" in line)
        secret = re.search(r"client_secret=(\S+)", recipe).group(1)
        grant = {"grant_type": "client_credentials", "client_id": "demo", "client_secret": secret}
        token = requests.post(f"http://127.0.0.1:{port}/oauth/token", data=grant, timeout=10).json()["access_token"]
        response = requests.get(
            url, params={"$top": "5", "$select": CHECKED}, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert response.status_code == 200
        served = response.json()["value"]
        world = SandboxWorld(seed=11, properties=300)
        expected = sorted((expected_property(r) for r in sandbox_records(world)), key=lambda p: p["ListingKey"])
        assert served == expected[:5]
        # So does the GraphQL query it printed.
        printed = next(line for line in lines if "/graphql -d " in line)
        body = re.search(r"-d '(.+)'", printed).group(1)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        answer = requests.post(f"http://127.0.0.1:{port}/graphql", data=body, headers=headers, timeout=10)
        nodes = answer.json()["data"]["properties"]["nodes"]
        assert [node["ListingKey"] for node in nodes] == [p["ListingKey"] for p in expected[:5]]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        reader.join(timeout=10)
    output = "".join(lines)
    assert "Ready." in output and f"http://127.0.0.1:{port}/odata/Property?$top=5" in output


def test_serve_with_two_processes_answers_and_holds_one_rate_limit(published_gold: PublishedGold) -> None:
    """`mls2 serve --workers 2 --no-access-log`: two server processes on one port, each request on a
    new connection, the client's 8 requests a minute enforced across both, no request logged."""
    port = free_port()
    secret = ClientRegistry(published_gold.settings.paths.api_clients).add("pair", 8, replace=True)
    env = {**os.environ, "MLS2_DATA_DIR": str(published_gold.settings.paths.root)}
    mls2 = Path(sys.executable).with_name("mls2")
    process = subprocess.Popen(
        [str(mls2), "serve", "--port", str(port), "--workers", "2", "--no-access-log"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    api = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{api}/health", process)
        grant = {"grant_type": "client_credentials", "client_id": "pair", "client_secret": secret}
        token = requests.post(f"{api}/oauth/token", data=grant, timeout=10).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Connection": "close"}
        key = published_gold.rows("property")[0]["ListingKey"]
        codes = [requests.get(f"{api}/odata/Property('{key}')", headers=headers).status_code for _ in range(12)]
        assert codes == [200] * 8 + [429] * 4
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert output.count("Started server process") == 2, output
    assert "GET /odata" not in output, "--no-access-log still logged requests"


def test_changes_in_the_sandbox_reach_the_api_and_a_quiet_rerun_changes_nothing(
    settings: Settings, world: SandboxWorld, sandbox: SandboxServer, sync
) -> None:
    sync()
    run_update(settings.paths)
    lakehouse = Lakehouse(settings.paths.lakehouse)
    client_id, secret = register_test_client(settings)
    with BackgroundServer(create_app(settings), name="api") as api:
        grant = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        token = requests.post(f"{api.url}/oauth/token", data=grant, timeout=10).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}

        def served(key: str) -> dict:
            params = {"$top": "1000", "$select": CHECKED}
            response = requests.get(f"{api.url}/odata/Property", params=params, headers=headers, timeout=10)
            assert response.status_code == 200
            return {row["ListingKey"]: row for row in response.json()["value"]}[key]

        def by_key(key: str) -> dict:
            """The record as `Property('K')` serves it: from the published file's places index."""
            response = requests.get(f"{api.url}/odata/Property('{key}')", headers=headers, timeout=10)
            assert response.status_code == 200
            return {name: response.json()[name] for name in CHECKED.split(",")}

        records = sandbox_records(world)
        for record in records[:20]:
            assert served(f"QOBRIX_{record['id']}") == expected_property(record)

        versions = {name: lakehouse.version(name) for name in load_graph().datasets}
        pointer = settings.paths.snapshot_pointer.read_bytes()
        quiet = run_update(settings.paths)
        assert {flow.status for flow in quiet.flows} == {"SKIPPED"}
        assert {name: lakehouse.version(name) for name in versions} == versions
        assert settings.paths.snapshot_pointer.read_bytes() == pointer

        advance = requests.post(f"{sandbox.url}/_sandbox/advance", json={"properties": {"updates": 1}}, timeout=5)
        changed_id = advance.json()["changed"]["properties"]["updated"][0]
        changed = next(r for r in sandbox_records(world) if r["id"] == changed_id)
        before = served(f"QOBRIX_{changed_id}")
        sync()
        run_update(settings.paths)
        after = served(f"QOBRIX_{changed_id}")
        assert after == expected_property(changed) == by_key(f"QOBRIX_{changed_id}"), "patched, index and all"
        assert after["ModificationTimestamp"] > before["ModificationTimestamp"]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_mls2_serve_takes_the_updates_of_mls2_pipeline_run_until_it_stops(
    published_gold: PublishedGold, tmp_path: Path, workers: str
) -> None:
    """`mls2 serve` announces itself in the data folder; `mls2 pipeline run` from another shell sends
    its update there (the server's run list has it; with two server processes, one may start it and
    the other stream it), and after SIGTERM runs its own again."""
    data = tmp_path / "data"
    shutil.copytree(published_gold.settings.paths.root, data)
    paths = DataPaths(data)
    env = {**os.environ, "MLS2_DATA_DIR": str(data), "MLS2_INTEGRITY_AFTER_UPDATE": "false"}
    mls2 = str(Path(sys.executable).with_name("mls2"))
    process = subprocess.Popen(
        [mls2, "serve", "--port", "0", "--workers", workers],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(paths.server_announcement.exists, timeout=60, what="the server's announcement")
        url = orjson.loads(paths.server_announcement.read_bytes())["url"]
        wait_for(f"{url}/health", process)
        sent = subprocess.run([mls2, "pipeline", "run"], env=env, capture_output=True, text=True, timeout=300)
        assert sent.returncode == 0 and "runs on the server" in sent.stderr, sent.stderr
        [run] = RunLog(load_settings(mls2_data_dir=data)).runs()
        assert run.state == "COMPLETED" and run.run_id in sent.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert not paths.server_announcement.exists(), f"a stopped server left its announcement: {output[-2000:]}"
    after = subprocess.run([mls2, "pipeline", "run"], env=env, capture_output=True, text=True, timeout=300)
    assert after.returncode == 0 and "runs on the server" not in after.stderr, after.stderr
    assert len(RunLog(load_settings(mls2_data_dir=data)).runs()) == 1
