"""Paging a GraphQL connection to the end while an update is published between two pages: listings
created, changed, trashed and deleted meanwhile. Keyset cursors neither repeat nor skip a listing
that lived through both snapshots; in modification order, a listing changed meanwhile comes again
as its new version, never the same version twice."""

from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from conf.settings import DataPaths, load_settings
from ingestion.sandbox import SandboxServer, SandboxWorld
from ingestion.sandbox.world import Changes
from pipelines import run_update
from tests.conftest import authorized_api, make_sync

PAGE = """query($after: String, $order: [PropertyOrderBy!]) {
  properties(first: 15, orderBy: $order, after: $after) {
    pageInfo { hasNextPage endCursor } nodes { ListingKey ModificationTimestamp }
  }
}"""


def page(api: TestClient, order: list[dict], after: str | None) -> dict:
    response = api.post("/graphql", json={"query": PAGE, "variables": {"after": after, "order": order}})
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"]["properties"]


def served_keys(api: TestClient) -> set[str]:
    body = api.post("/graphql", json={"query": "{ properties(first: 1000) { nodes { ListingKey } } }"}).json()
    return {node["ListingKey"] for node in body["data"]["properties"]["nodes"]}


@pytest.mark.parametrize("order", [[{"ListingKey": "asc"}], [{"ModificationTimestamp": "asc"}]], ids=["key", "time"])
def test_paging_across_a_published_update_neither_repeats_nor_skips(tmp_path, order: list[dict]) -> None:
    settings = load_settings(mls2_data_dir=tmp_path / "data")
    world = SandboxWorld(seed=23, properties=90)
    with SandboxServer(world) as server:
        sync = make_sync(settings, server)
        sync()
        run_update(DataPaths(settings.mls2_data_dir))
        with authorized_api(settings) as api:
            before = served_keys(api)
            first = page(api, order, None)
            rows = list(first["nodes"])
            changes = Changes(creates=6, updates=12, trashes=4, deletes=3)
            world.advance(changes={"properties": changes})
            sync()
            run_update(DataPaths(settings.mls2_data_dir))
            after = served_keys(api)
            assert after != before and before - after and after - before, "the update changed which listings live"
            cursor = first["pageInfo"]["endCursor"]
            for _ in range(50):
                current = page(api, order, cursor)
                rows += current["nodes"]
                if not current["pageInfo"]["hasNextPage"]:
                    break
                cursor = current["pageInfo"]["endCursor"]
    versions = [(row["ListingKey"], datetime.fromisoformat(row["ModificationTimestamp"])) for row in rows]
    assert len(versions) == len(set(versions)), "a version of a listing came twice"
    keys = [key for key, _ in versions]
    assert before & after <= set(keys), "a listing alive through both snapshots was skipped"
    if order == [{"ListingKey": "asc"}]:
        assert len(keys) == len(set(keys)) and keys == sorted(keys)
    else:
        repeated = {key for key in keys if keys.count(key) > 1}
        assert repeated, "no listing of the first page changed: the case shows nothing"
        latest = {key: stamp for key, stamp in versions}
        assert all(latest[key] == max(s for k, s in versions if k == key) for key in repeated)
