"""Every sandbox endpoint the product uses answers what the Qobrix OpenAPI spec says, for many seeds."""

from pathlib import Path

import pytest
import requests

from ingestion.sandbox import SANDBOX_API_KEY, SANDBOX_API_USER, SandboxServer, SandboxWorld
from ingestion.sandbox.generators.entities import ENTITIES
from ingestion.sandbox.world import EXPANSIONS
from tests.contracts import extract
from tests.contracts.qobrix import contract, errors, fields_of, schema_of

AUTH = {"X-Api-User": SANDBOX_API_USER, "X-Api-Key": SANDBOX_API_KEY}
SEEDS = [42, pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow),
         pytest.param(3, marks=pytest.mark.slow), pytest.param(2026, marks=pytest.mark.slow)]  # fmt: skip


def get(server: SandboxServer, path: str, **params: object) -> dict:
    response = requests.get(f"{server.base_url}/{path}", params=params, headers=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def check(schema_name: str, payload: object, where: str) -> None:
    problems = errors(schema_name, payload)
    assert not problems, f"{where} breaks {schema_name}: {problems[:5]}"


@pytest.fixture(scope="module", params=SEEDS, ids=["seed42", "seed1", "seed2", "seed3", "seed2026"])
def changed_sandbox(request):
    world = SandboxWorld(seed=request.param, properties=350)
    world.advance(steps=3)
    with SandboxServer(world) as server:
        yield server


def test_list_and_read_endpoints_match_their_schemas(changed_sandbox: SandboxServer) -> None:
    for entity in ENTITIES:
        schema = schema_of(entity)
        for options in ({"expand": "false", "media": "false"}, {}):
            body = get(changed_sandbox, entity, limit=100, **options)
            check("pagination", body["pagination"], f"{entity} pagination")
            for record in body["data"]:
                check(schema, record, f"{entity} {record.get('id')}")
                for key, _, related in EXPANSIONS.get(entity, ()):
                    if related and record.get(key) is not None and related != "property-types":
                        check(schema_of(related), record[key], f"{entity}.{key}")
                for item in record.get("media", []):
                    check("MediaResponse", item, f"{entity} media {item['id']}")
        trashed = get(changed_sandbox, entity, trashed="true", limit=100)["data"]
        for record in trashed:
            check(schema, record, f"trashed {entity}")
        one = get(changed_sandbox, f"{entity}/{body['data'][0]['id']}")
        check(schema, one["data"], f"{entity} by id")


def test_media_by_category_matches_media_response(changed_sandbox: SandboxServer) -> None:
    for resource, entity in (("Properties", "properties"), ("Projects", "projects")):
        for record in get(changed_sandbox, entity, limit=15, expand="false", media="false")["data"]:
            for category in ("photos", "documents", "floorplans"):
                for item in get(changed_sandbox, f"media/by-category/{category}/{resource}/{record['id']}")["data"]:
                    check("MediaResponse", item, f"{resource} {category}")


def test_records_carry_every_field_of_their_schema() -> None:
    world = SandboxWorld(seed=7, properties=200)
    for entity in ENTITIES:
        record = world.record(entity, 0)
        assert fields_of(schema_of(entity)) <= set(record), (entity, fields_of(schema_of(entity)) - set(record))


def test_error_bodies_match_the_error_schema(sandbox: SandboxServer) -> None:
    for path, headers in (("properties?limit=500", AUTH), ("properties", {}), ("nowhere", AUTH)):
        response = requests.get(f"{sandbox.base_url}/{path}", headers=headers, timeout=5)
        check("ErrorResponse", response.json(), path)


@pytest.mark.skipif(not (extract.DEFAULT_REFERENCE / "qobrix").is_dir(), reason="reference folder not present")
def test_contract_fixture_is_current_with_the_reference_spec() -> None:
    assert extract.qobrix_schemas(Path(extract.DEFAULT_REFERENCE)) == contract()
