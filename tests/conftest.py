"""Shared fixtures: a fresh data directory, the sandbox on a real port, sync and update helpers."""

import contextlib
import hashlib
import math
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import hypothesis
import orjson
import pyarrow as pa
import pytest
from deltalake import DeltaTable
from fastapi.testclient import TestClient

from conf.entities import select_entities
from conf.settings import DataPaths, Settings, load_settings
from ingestion.client import ClientSettings, QobrixClient
from ingestion.sandbox import SANDBOX_API_KEY, SANDBOX_API_USER, SandboxServer, SandboxWorld
from ingestion.state import SyncState
from ingestion.sync import Sync, SyncOptions, SyncReport
from pipelines._engine import cdc, key_index
from pipelines._engine.flows import materialized_view

# The fuzz suites run the same examples every time (a red run is a bug, never a roll of the dice);
# HYPOTHESIS_PROFILE=explore draws new ones, to look for more (docs/TESTING.md).
hypothesis.settings.register_profile("deterministic", derandomize=True, deadline=None)
hypothesis.settings.register_profile("explore", derandomize=False, deadline=None)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))


def sandbox_records(world: SandboxWorld, entity: str = "properties") -> list[dict]:
    """Every listed record of `entity` as the sandbox serves it with `expand=false&media=false`."""
    records, count = world.list_records(entity, limit=10**9, expand=False, media=False)
    assert len(records) == count
    return records


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's .env or Qobrix credentials."""
    monkeypatch.chdir(tmp_path)
    for name in ("QOBRIX_API_BASE_URL", "QOBRIX_API_USER", "QOBRIX_API_KEY", "MLS2_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(mls2_data_dir=tmp_path / "data")


OPERATOR_PASSWORD = "correct horse battery"


@pytest.fixture
def landed(settings: Settings) -> Settings:
    """A small sandbox synced into landing, not yet run through the pipeline; operator `ops` may sign
    in to its pipeline UI with OPERATOR_PASSWORD."""
    from pipelines.ui.operators import OperatorRegistry

    with SandboxServer(SandboxWorld(seed=3, properties=15)) as server:
        make_sync(settings, server)()
    OperatorRegistry(settings.paths.operators).add("ops", OPERATOR_PASSWORD)
    return settings


def data_quality(settings: Settings, update_id: str, dataset: str) -> dict:
    """The event log's `data_quality` of `dataset`'s flow in update `update_id`."""
    from pipelines._engine.events import read_events

    events = read_events(settings.paths.lakehouse, update=update_id, event_type="flow_progress", limit=10_000)
    [quality] = [
        orjson.loads(event["details"])["flow_progress"]["data_quality"]
        for event in events
        if event["dataset"] == dataset and "data_quality" in event["details"]
    ]
    return quality


def apply_by(how: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """AUTO CDC targets and views refreshed by key always merged on read (deletion vectors), finding
    the rows they replace by scanning or, when `indexed`, through key indexes; or always written anew.
    Which a change takes depends on how many of the table's rows it replaces, and a key index on its
    size."""
    fraction = 0 if how == "rewrite" else math.inf
    monkeypatch.setattr(cdc, "REWRITE_FRACTION", fraction)
    monkeypatch.setattr(materialized_view, "REWRITE_FRACTION", fraction)
    monkeypatch.setattr(key_index, "INDEXED_CELLS", 0 if how == "indexed" else math.inf)
    return how


@pytest.fixture(params=["merge", "indexed", "rewrite"])
def scd1_apply(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Runs a test with SCD 1 targets and views refreshed by key in each way `apply_by` names; indexed,
    the test must have looked rows up through a key index (not scanned them all along)."""
    lookups = []
    locate = key_index.KeyIndex.locate

    def counted(index: key_index.KeyIndex, column: str, values: pa.Array) -> pa.Table:
        lookups.append(column)
        return locate(index, column, values)

    monkeypatch.setattr(key_index.KeyIndex, "locate", counted)
    yield apply_by(request.param, monkeypatch)
    assert bool(lookups) == (request.param == "indexed"), lookups


@pytest.fixture(params=["merge", "rewrite"])
def scd2_apply(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test with SCD 2 targets merged on read, then written anew (they have no key index)."""
    return apply_by(request.param, monkeypatch)


@pytest.fixture
def world() -> SandboxWorld:
    return SandboxWorld(seed=7, properties=230)


@pytest.fixture
def sandbox(world: SandboxWorld) -> Iterator[SandboxServer]:
    with SandboxServer(world) as server:
        yield server


FAST_RETRIES = ClientSettings(backoff=0.01, max_backoff=0.05)


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[QobrixClient]:
    qobrix = QobrixClient(sandbox.base_url, SANDBOX_API_USER, SANDBOX_API_KEY, FAST_RETRIES)
    yield qobrix
    qobrix.close()


def make_sync(settings: Settings, server: SandboxServer):
    """A function running a sync from `server` into `settings`' landing zone (all entities unless `entities=`)."""

    def run(entities: list[str] | None = None, **options: object) -> SyncReport:
        client = QobrixClient(server.base_url, SANDBOX_API_USER, SANDBOX_API_KEY, FAST_RETRIES)
        state = SyncState(settings.sync_state_path)
        try:
            return Sync(
                client=client,
                landing_root=settings.landing_root,
                state=state,
                entities=select_entities(entities),
                options=SyncOptions(**options),
            ).run()
        finally:
            state.close()
            client.close()

    return run


@pytest.fixture
def sync(settings: Settings, sandbox: SandboxServer):
    return make_sync(settings, sandbox)


class PublishedGold:
    """A sandbox synced whole and run through the pipeline once: what the API tests read."""

    def __init__(self, settings: Settings, world: SandboxWorld) -> None:
        self.settings = settings
        self.world = world

    def rows(self, table: str) -> list[dict]:
        """Every row of a published gold table, read straight from the snapshot (not through the API)."""
        from pipelines.snapshot import open_snapshot, read_pointer

        paths = self.settings.paths
        with open_snapshot(paths.snapshots, read_pointer(paths.snapshot_pointer)) as con:
            cursor = con.execute(f"SELECT COLUMNS(lambda c: NOT starts_with(c, '__')) FROM \"{table}\"")
            columns = [c[0] for c in cursor.description]
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


@pytest.fixture(scope="session")
def published_gold(tmp_path_factory: pytest.TempPathFactory) -> PublishedGold:
    from pipelines import run_update

    settings = load_settings(mls2_data_dir=tmp_path_factory.mktemp("published") / "data")
    world = SandboxWorld(seed=11, properties=260)

    def publish(data: Path) -> None:
        with SandboxServer(world) as server:
            make_sync(settings.model_copy(update={"mls2_data_dir": data}), server)()
        run_update(DataPaths(data))

    if os.environ.get("MUTANT_UNDER_TEST"):
        copy_built_once_per_mutation_run("published_gold", publish, settings.mls2_data_dir)
    else:
        publish(settings.mls2_data_dir)
    return PublishedGold(settings, world)


MUTATION_FIXTURES = Path(".cache/mutation-fixtures")


def copy_built_once_per_mutation_run(name: str, build: Callable[[Path], None], target: Path) -> None:
    """Mutation runs (mutmut sets MUTANT_UNDER_TEST) start a pytest session per mutant. A shared data
    directory is then built once per run of the same source, by the unmutated code (mutmut's
    trampolines call the originals while MUTANT_UNDER_TEST is empty), and each session copies it: a
    mutant is judged by the tests that run its code, not by the fixture they share, and a fixture
    built under one mutant is never read under another."""
    digest = hashlib.sha256()
    for path in sorted(Path().glob("**/*")):
        if (
            path.is_file()
            and path.suffix in {".py", ".sql", ".yaml", ".json"}
            and MUTATION_FIXTURES not in path.parents
        ):
            digest.update(str(path).encode() + path.read_bytes())
    built = MUTATION_FIXTURES / f"{name}-{digest.hexdigest()[:16]}"
    if not built.exists():
        staging = MUTATION_FIXTURES / f"{name}-{os.getpid()}.building"
        shutil.rmtree(staging, ignore_errors=True)
        mutant = os.environ["MUTANT_UNDER_TEST"]
        os.environ["MUTANT_UNDER_TEST"] = ""
        try:
            build(staging)
        finally:
            os.environ["MUTANT_UNDER_TEST"] = mutant
        with contextlib.suppress(OSError):  # another session got there first: theirs is the same
            staging.rename(built)
        shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(built, target)


TEST_CLIENT_ID = "tests"


_test_secrets: dict[Path, str] = {}


def register_test_client(settings: Settings) -> tuple[str, str]:
    """An API client for the tests (rate limit out of the way), as (client_id, secret); registered once
    per data directory, as a new secret would refuse the tokens earlier tests hold."""
    from graphql_odata.security.clients import ClientRegistry

    registry, path = ClientRegistry(settings.paths.api_clients), settings.paths.api_clients
    if path not in _test_secrets or registry.get(TEST_CLIENT_ID) is None:
        _test_secrets[path] = registry.add(TEST_CLIENT_ID, 10**7, replace=True)
    return TEST_CLIENT_ID, _test_secrets[path]


def live_token(settings: Settings, base: str) -> str:
    """A bearer token from the API served at `base`, for the registered test client (over HTTP)."""
    import requests

    client_id, secret = register_test_client(settings)
    grant = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return requests.post(f"{base}/oauth/token", data=grant, timeout=30).json()["access_token"]


@contextmanager
def live_api(settings: Settings) -> Iterator[str]:
    """The API served by uvicorn on a free port of this machine, as its base URL."""
    from graphql_odata.main import create_app

    with served(create_app(settings)) as url:
        yield url


@contextmanager
def served(app: object) -> Iterator[str]:
    """An ASGI app served by uvicorn on a free port of this machine, as its base URL."""
    import threading

    import uvicorn

    from graphql_odata.http_protocol import HTTP_PROTOCOL
    from tests.bounded import wait_until

    config = uvicorn.Config(app, port=0, http=HTTP_PROTOCOL, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=30, what="the API server to start")
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def authorized_api(
    settings: Settings, backend: object | None = None, *, raise_server_exceptions: bool = True
) -> Iterator[TestClient]:
    """The app in-process (on `backend`, default the snapshot), with a registered client's bearer token."""
    from graphql_odata.main import create_app

    client_id, secret = register_test_client(settings)
    with TestClient(create_app(settings, backend), raise_server_exceptions=raise_server_exceptions) as client:
        grant = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        client.headers["Authorization"] = f"Bearer {client.post('/oauth/token', data=grant).json()['access_token']}"
        yield client


@pytest.fixture(scope="session")
def defective_lakehouse(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A sandbox with defects and churn on, synced and run through one update."""
    from ingestion.sandbox.faults import FaultConfig
    from pipelines import run_update

    settings = load_settings(mls2_data_dir=tmp_path_factory.mktemp("integrity") / "data")
    with SandboxServer(
        SandboxWorld(seed=5, properties=40), faults=FaultConfig(defect_rate=0.05, churn_every=7)
    ) as server:
        make_sync(settings, server)()
    run_update(settings.paths)
    return settings


@pytest.fixture
def lakehouse_copy(defective_lakehouse: Settings, tmp_path: Path) -> Settings:
    """The synced data directory, copied: a fault written into it harms no other test."""
    shutil.copytree(defective_lakehouse.paths.root, tmp_path / "data")
    return load_settings(mls2_data_dir=tmp_path / "data")


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).parents[1] / ".cache" / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium, headless, driven by Playwright (the browser suites: `make test-browser`)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: apt-get install chromium (.ci/run does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


def delta_rows(table: DeltaTable) -> pa.Table:
    """A Delta table's rows as delta-rs reads them (with its deletion vectors applied: an independent
    reader of what the engine writes), in the table's own Arrow types."""
    return pa.table(table.scan()).cast(pa.schema(table.schema().to_arrow()))
