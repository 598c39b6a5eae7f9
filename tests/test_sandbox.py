"""The sandbox speaks the Qobrix list envelope, header auth and errors, deterministically."""

import requests

from ingestion.sandbox import SANDBOX_API_KEY, SANDBOX_API_USER, SandboxServer, SandboxWorld
from ingestion.sandbox.generator import property_record

AUTH = {"X-Api-User": SANDBOX_API_USER, "X-Api-Key": SANDBOX_API_KEY}


def test_list_envelope_and_pagination(sandbox: SandboxServer) -> None:
    response = requests.get(f"{sandbox.base_url}/properties", params={"page": 3, "limit": 100}, headers=AUTH, timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert body["pagination"] == {
        "page_count": 3,
        "current_page": 3,
        "has_next_page": False,
        "has_prev_page": True,
        "count": 230,
        "limit": 100,
    }
    assert [record["ref"] for record in body["data"]] == list(range(201, 231))


def test_missing_or_wrong_credentials_get_401_error_envelope(sandbox: SandboxServer) -> None:
    for headers in ({}, {**AUTH, "X-Api-Key": "wrong"}):
        response = requests.get(f"{sandbox.base_url}/properties", headers=headers, timeout=5)
        assert response.status_code == 401
        assert "errors" in response.json() and response.json()["errors"][0].startswith("Unauthorized")


def test_bad_parameters_get_400_and_unknown_paths_404(sandbox: SandboxServer) -> None:
    too_many = requests.get(f"{sandbox.base_url}/properties", params={"limit": 101}, headers=AUTH, timeout=5)
    assert too_many.status_code == 400 and "limit" in too_many.json()["errors"][0]
    not_a_number = requests.get(f"{sandbox.base_url}/properties", params={"page": "x"}, headers=AUTH, timeout=5)
    assert not_a_number.status_code == 400 and "page" in not_a_number.json()["errors"][0]
    unknown = requests.get(f"{sandbox.base_url}/nothing-here", headers=AUTH, timeout=5)
    assert unknown.status_code == 404 and unknown.json() == {"errors": ["Not Found"]}


def test_same_seed_same_records_other_seed_other_records() -> None:
    first, again, other = (
        SandboxWorld(seed=5, properties=50),
        SandboxWorld(seed=5, properties=50),
        SandboxWorld(seed=6, properties=50),
    )
    assert first.properties_page(1, 50) == again.properties_page(1, 50)
    assert [r["id"] for r in first.properties_page(1, 50)] != [r["id"] for r in other.properties_page(1, 50)]
    assert first.properties_page(1, 50)[17] == property_record(5, 17, 50)


def test_advance_edits_records_and_moves_modified_forward() -> None:
    world = SandboxWorld(seed=5, properties=50)
    before = {record["id"]: record for record in world.properties_page(1, 50)}
    report = world.advance(updates=4)
    after = {record["id"]: record for record in world.properties_page(1, 50)}
    assert len(report.updated) == 4
    changed = {key for key in before if before[key] != after[key]}
    assert changed == set(report.updated)
    for key in changed:
        assert after[key]["modified"] > before[key]["modified"]
        assert after[key]["modified"] == report.clock.isoformat()


def test_advance_is_deterministic() -> None:
    one, two = SandboxWorld(seed=9, properties=80), SandboxWorld(seed=9, properties=80)
    for _ in range(3):
        assert one.advance(updates=5).updated == two.advance(updates=5).updated
    assert one.properties_page(1, 80) == two.properties_page(1, 80)


def test_admin_advance_endpoint(sandbox: SandboxServer) -> None:
    response = requests.post(f"{sandbox.url}/_sandbox/advance", params={"updates": 3}, timeout=5)
    assert response.status_code == 200
    assert response.json()["step"] == 1 and len(response.json()["updated"]) == 3
