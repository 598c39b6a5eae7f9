"""Sync against the sandbox over real HTTP: every record landed as the sandbox served it."""

import orjson
import pytest

from conf.settings import Settings
from ingestion.client import QobrixClient
from ingestion.errors import QobrixAuthError
from ingestion.sandbox import SandboxServer, SandboxWorld
from ingestion.state import SyncState
from tests.conftest import sandbox_records


def landed_records(settings: Settings) -> list[dict]:
    files = sorted(settings.paths.landing.glob("properties/*/*/*.jsonl"))
    return [orjson.loads(line)["record"] for path in files for line in path.read_bytes().splitlines()]


def test_full_sync_lands_every_record_exactly(settings: Settings, world: SandboxWorld, sync) -> None:
    result = sync()
    assert result.status == "succeeded"
    assert result.entities[0].records == world.property_count == 230
    assert result.entities[0].pages == 3
    assert landed_records(settings) == sandbox_records(world)


def test_max_properties_limits_the_landing(settings: Settings, sync) -> None:
    result = sync(max_properties=120)
    assert result.entities[0].records == 120
    assert [record["ref"] for record in landed_records(settings)] == list(range(1, 121))


def test_state_and_manifest_record_the_sync(settings: Settings, sync) -> None:
    result = sync()
    state = SyncState(settings.paths.state / "sync_state.json")
    assert state.entity("properties")["last_sync_id"] == result.sync_id
    assert state.syncs[0]["sync_id"] == result.sync_id
    manifest = orjson.loads((settings.paths.landing / "_manifests" / f"{result.sync_id}.json").read_bytes())
    assert manifest["status"] == "succeeded"
    assert manifest["entities"] == [{"entity": "properties", "pages": 3, "records": 230}]


def test_wrong_credentials_raise_an_auth_error_naming_entity_and_page(sandbox: SandboxServer) -> None:
    client = QobrixClient(sandbox.base_url, "someone", "wrong")
    with pytest.raises(QobrixAuthError, match="entity properties, page 1: Qobrix refused the credentials"):
        client.get_page("properties", "properties", 1)
