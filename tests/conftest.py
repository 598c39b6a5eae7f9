"""Shared fixtures: a fresh data directory, the sandbox on a real port, sync and update helpers."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from conf.entities import select_entities
from conf.settings import Settings, load_settings
from ingestion.client import QobrixClient
from ingestion.sandbox import SANDBOX_API_KEY, SANDBOX_API_USER, SandboxServer, SandboxWorld
from ingestion.sync import SyncResult, run_sync


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


@pytest.fixture
def world() -> SandboxWorld:
    return SandboxWorld(seed=7, properties=230)


@pytest.fixture
def sandbox(world: SandboxWorld) -> Iterator[SandboxServer]:
    with SandboxServer(world) as server:
        yield server


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[QobrixClient]:
    qobrix = QobrixClient(sandbox.base_url, SANDBOX_API_USER, SANDBOX_API_KEY, backoff_factor=0.01)
    yield qobrix
    qobrix.close()


@pytest.fixture
def sync(settings: Settings, client: QobrixClient):
    """Run a sync of every entity from the sandbox into `settings`' landing zone."""

    def run(**options: object) -> SyncResult:
        return run_sync(
            client=client,
            landing_root=settings.paths.landing,
            state_path=settings.paths.state / "sync_state.json",
            entities=select_entities(None),
            **options,
        )

    return run
