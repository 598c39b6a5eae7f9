"""The OData routes over a published snapshot: $top, $select, errors in the OData JSON shape."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from conf.settings import Settings, load_settings
from graphql_odata.main import create_app
from ingestion.sandbox import SandboxServer, SandboxWorld
from pipelines import run_update
from tests.conftest import make_sync, sandbox_records


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, SandboxWorld]]:
    """One sandbox, synced and run through the pipeline once for the whole module."""
    settings = load_settings(mls2_data_dir=tmp_path_factory.mktemp("odata") / "data")
    world = SandboxWorld(seed=7, properties=230)
    with SandboxServer(world) as server:
        make_sync(settings, server)(entities=["properties"])
    run_update(settings.paths)
    yield settings, world


@pytest.fixture
def world(published) -> SandboxWorld:
    return published[1]


@pytest.fixture
def api(published) -> Iterator[TestClient]:
    with TestClient(create_app(published[0])) as client:
        yield client


def assert_odata_error(response, status: int, target: str | None, fragment: str) -> None:
    assert response.status_code == status
    assert response.headers["OData-Version"] == "4.01"
    error = response.json()["error"]
    assert set(error) == {"code", "message", "target", "details"}
    assert error["target"] == target and fragment in error["message"]


def test_top_and_select_return_the_sandbox_values(api: TestClient, world: SandboxWorld) -> None:
    response = api.get("/odata/Property", params={"$top": "5", "$select": "ListingKey,ListPrice"})
    assert response.status_code == 200
    assert response.headers["OData-Version"] == "4.01"
    body = response.json()
    assert body["@odata.context"].endswith("/odata/$metadata#Property(ListingKey,ListPrice)")
    by_key = {f"QOBRIX_{r['id']}": r for r in sandbox_records(world)}
    expected = sorted(by_key)[:5]
    assert [row["ListingKey"] for row in body["value"]] == expected
    for row in body["value"]:
        assert set(row) == {"ListingKey", "ListPrice"}
        assert row["ListPrice"] == by_key[row["ListingKey"]]["list_selling_price_amount"]


def test_all_fields_without_select(api: TestClient, world: SandboxWorld) -> None:
    [row] = api.get("/odata/Property", params={"$top": "1"}).json()["value"]
    source = next(r for r in sandbox_records(world) if f"QOBRIX_{r['id']}" == row["ListingKey"])
    statuses = {
        "available": "Active",
        "reserved": "Pending",
        "under_offer": "Pending",
        "sold": "Closed",
        "rented": "Closed",
        "withdrawn": "Withdrawn",
    }
    assert row["StandardStatus"] == statuses.get(source["status"])
    assert row["ModificationTimestamp"] == source["modified"].replace("+00:00", "Z")


def test_service_document_lists_resources(api: TestClient) -> None:
    body = api.get("/odata").json()
    assert {"name": "Property", "kind": "EntitySet", "url": "Property"} in body["value"]


@pytest.mark.parametrize(
    ("params", "status", "target", "fragment"),
    [
        ({"$top": "-1"}, 400, "$top", "non-negative integer"),
        ({"$top": "abc"}, 400, "$top", "non-negative integer"),
        ({"$top": "100000"}, 400, "$top", "at most"),
        ({"$select": "ListingKey,Nope"}, 400, "$select", "Nope"),
        ({"$select": "ListingKey,"}, 400, "$select", "(empty)"),
        ({"$frobnicate": "1"}, 400, "$frobnicate", "unknown system query option"),
    ],
)
def test_bad_options_get_odata_errors(api: TestClient, params: dict, status: int, target: str, fragment: str) -> None:
    assert_odata_error(api.get("/odata/Property", params=params), status, target, fragment)


def test_unknown_resource_is_404(api: TestClient) -> None:
    assert_odata_error(api.get("/odata/ResourceNotFound"), 404, "ResourceNotFound", "no resource")


def test_no_snapshot_yet_is_503_not_500(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        response = client.get("/odata/Property")
        assert response.status_code == 503 and "mls2 pipeline run" in response.json()["error"]["message"]
        assert client.get("/health").json()["status"] == "unavailable"


def test_health_reports_the_snapshot(api: TestClient) -> None:
    health = api.get("/health").json()
    assert health["status"] == "ok" and health["snapshot"].startswith("gold-") and health["age_seconds"] >= 0
