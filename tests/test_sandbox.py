"""The Qobrix sandbox over real HTTP: envelope, auth, errors, every entity, determinism, change."""

import pytest
import requests

from ingestion.sandbox import SANDBOX_API_KEY, SANDBOX_API_USER, SandboxServer, SandboxWorld
from ingestion.sandbox.generators.entities import ENTITIES

AUTH = {"X-Api-User": SANDBOX_API_USER, "X-Api-Key": SANDBOX_API_KEY}


def get(server: SandboxServer, path: str, **params: object) -> requests.Response:
    return requests.get(f"{server.base_url}/{path}", params=params, headers=AUTH, timeout=10)


def test_list_envelope_and_pagination(sandbox: SandboxServer, world: SandboxWorld) -> None:
    response = get(sandbox, "properties", page=3, limit=100, expand="false", media="false")
    assert response.status_code == 200
    body = response.json()
    count = world.property_count
    assert body["pagination"] == {
        "page_count": -(-count // 100),
        "current_page": 3,
        "has_next_page": False,
        "has_prev_page": True,
        "count": count,
        "limit": 100,
    }
    assert [record["ref"] for record in body["data"]] == list(range(201, count + 1))


def test_default_limit_is_ten_and_pages_cover_everything_once(sandbox: SandboxServer, world: SandboxWorld) -> None:
    assert len(get(sandbox, "agents").json()["data"]) == min(10, world.live_count("agents"))
    seen = []
    for page in range(1, 100):
        body = get(sandbox, "contacts", page=page, limit=37, expand="false", media="false").json()
        seen += [record["id"] for record in body["data"]]
        if not body["pagination"]["has_next_page"]:
            break
    assert len(seen) == len(set(seen)) and set(seen) == world.live_ids("contacts")


@pytest.mark.parametrize("entity", ENTITIES)
def test_every_entity_lists_and_reads_by_id(sandbox: SandboxServer, world: SandboxWorld, entity: str) -> None:
    body = get(sandbox, entity, limit=5).json()
    assert body["pagination"]["count"] == world.live_count(entity)
    first = body["data"][0]
    one = get(sandbox, f"{entity}/{first['id']}")
    assert one.status_code == 200 and one.json()["data"] == first


def test_expand_and_media_flags(sandbox: SandboxServer, world: SandboxWorld) -> None:
    lean = get(sandbox, "properties", limit=20, expand="false", media="false").json()["data"]
    rich = get(sandbox, "properties", limit=20).json()["data"]
    assert "media" not in lean[0] and "seller_contact" not in lean[0]
    for plain, expanded in zip(lean, rich, strict=True):
        assert {k: v for k, v in expanded.items() if k in plain} == plain
        assert expanded["seller_contact"]["id"] == plain["seller"]
        assert expanded["location_location"]["id"] == plain["location"]
        assert expanded["PropertyPropertyType"]["code"] == plain["property_type"]
        assert expanded["agent_agent"]["id"] == plain["agent"]
        assert (expanded["project_project"] or {}).get("id") == plain["project"]
        assert expanded["media"] and all(m["related_id"] in (plain["id"], plain["project"]) for m in expanded["media"])
    assert len(get(sandbox, "properties", limit=20, expand="true", media="false").json()["data"][0]) > len(lean[0])


def test_media_by_category_matches_inline_media(sandbox: SandboxServer, world: SandboxWorld) -> None:
    properties = get(sandbox, "properties", limit=40).json()["data"]
    inherited = next(p for p in properties if p["project"] and p["inherit_project_media"])
    for record in (properties[0], inherited):
        by_category = []
        for category in ("photos", "documents", "floorplans"):
            response = get(sandbox, f"media/by-category/{category}/Properties/{record['id']}")
            assert response.status_code == 200 and set(response.json()) == {"data"}
            assert {m["category"]["name"] for m in response.json()["data"]} <= {category}
            by_category += response.json()["data"]
        assert by_category == record["media"]
    project_photos = get(sandbox, f"media/by-category/photos/Projects/{inherited['project']}").json()["data"]
    assert {m["id"] for m in project_photos} <= {m["id"] for m in inherited["media"]}
    assert all(m["file"]["href"].startswith("https://") for m in inherited["media"])


def test_viewings_point_at_meetings_with_real_times(sandbox: SandboxServer) -> None:
    for viewing in get(sandbox, "property-viewings", limit=20).json()["data"]:
        meeting = get(sandbox, f"meetings/{viewing['viewing_id']}").json()["data"]
        assert meeting["start_date"] < meeting["end_date"]
        assert meeting["subject"] == "Property viewing" and meeting["related_agent"]
        assert get(sandbox, f"properties/{viewing['property_id']}").status_code == 200


def test_missing_or_wrong_credentials_get_401_error_envelope(sandbox: SandboxServer) -> None:
    for headers in ({}, {"X-Api-User": SANDBOX_API_USER}, {**AUTH, "X-Api-Key": "wrong"}):
        response = requests.get(f"{sandbox.base_url}/properties", headers=headers, timeout=5)
        assert response.status_code == 401
        assert response.json()["errors"][0].startswith("Unauthorized")


@pytest.mark.parametrize(
    ("path", "params", "status", "fragment"),
    [
        ("properties", {"limit": 101}, 400, "limit: must be at most 100"),
        ("properties", {"limit": 0}, 400, "limit: must be a positive integer"),
        ("properties", {"page": "x"}, 400, "page: must be a positive integer"),
        ("properties", {"trashed": "maybe"}, 400, "trashed: must be true or false"),
        ("properties", {"search": "modified >="}, 400, "malformed search expression"),
        ("properties", {"search": "modified >= '2025-01-01' and"}, 400, "malformed search expression"),
        ("properties", {"search": "colour == 'red'"}, 400, "unknown field 'colour'"),
        ("properties", {"search": "DAYS_AGO(7) < modified"}, 400, "DAYS_AGO() is not supported"),
        ("properties", {"sort[]": "-colour"}, 400, "cannot sort Properties by unknown field"),
        ("bayut-locations", {"search": "modified >= '2025-01-01'"}, 400, "unknown field 'modified'"),
        ("nothing-here", {}, 404, "Not Found"),
        ("properties/not-a-uuid", {}, 404, "not found"),
        ("media/by-category/photos/Properties/00000000-0000-4000-8000-000000000000", {}, 404, "not found"),
        ("media/by-category/selfies/Properties/x", {}, 404, "category selfies not found"),
    ],
)
def test_bad_requests_get_qobrix_errors_not_crashes(
    sandbox: SandboxServer, path: str, params: dict, status: int, fragment: str
) -> None:
    response = get(sandbox, path, **params)
    assert response.status_code == status
    assert set(response.json()) == {"errors"} and fragment in response.json()["errors"][0]


def test_search_sort_and_trashed(sandbox: SandboxServer, world: SandboxWorld) -> None:
    world.advance(steps=3)
    since = "2026-01-01 00:00:00"
    changed = get(sandbox, "properties", search=f"modified >= '{since}'", **{"sort[]": "modified"}, limit=100).json()
    expected = {r["id"] for r in world.list_records("properties", limit=100, expand=False, media=False)[0]}
    assert changed["data"] and all(r["modified"] >= "2026-01-01T00:00:00" for r in changed["data"])
    stamps = [r["modified"] for r in changed["data"]]
    assert stamps == sorted(stamps)
    trashed = get(sandbox, "properties", trashed="true", limit=100).json()["data"]
    assert {r["id"] for r in trashed} == world.live_ids("properties", trashed=True)
    assert all(r["trashed"] for r in trashed) and not expected & {r["id"] for r in trashed}
    by_status = get(sandbox, "properties", search="status in ['sold', 'rented'] and bedrooms >= 2", limit=100).json()[
        "data"
    ]
    assert by_status and all(r["status"] in ("sold", "rented") and r["bedrooms"] >= 2 for r in by_status)


def test_one_record_of_a_trashed_property_needs_trashed_true(sandbox: SandboxServer, world: SandboxWorld) -> None:
    report = world.advance()
    [trashed_id] = report.ids("properties", "trashed")[:1]
    assert get(sandbox, f"properties/{trashed_id}").status_code == 404
    assert get(sandbox, f"properties/{trashed_id}", trashed="true").json()["data"]["trashed"]


def test_admin_advance_and_state(sandbox: SandboxServer, world: SandboxWorld) -> None:
    response = requests.post(
        f"{sandbox.url}/_sandbox/advance",
        params={"steps": 2},
        json={"properties": {"updates": 3, "deletes": 1}},
        timeout=10,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["step"] == 2 and len(body["changed"]["properties"]["updated"]) == 3
    assert set(body["changed"]) == {"properties"}
    state = requests.get(f"{sandbox.url}/_sandbox/state", timeout=5).json()
    assert state["step"] == 2 and state["counts"]["properties"] == world.property_count
    bad = requests.post(f"{sandbox.url}/_sandbox/advance", json={"unicorns": {"updates": 1}}, timeout=5)
    assert bad.status_code == 400 and "unknown entities" in bad.json()["errors"][0]


def test_pages_are_consistent_snapshots_while_data_changes(sandbox: SandboxServer, world: SandboxWorld) -> None:
    import threading

    from ingestion.sandbox.routes.records import CHURN

    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            world.advance(changes=CHURN)

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        for _ in range(15):
            page = get(
                sandbox,
                "properties",
                search="modified >= '2025-01-01 00:00:00'",
                limit=100,
                expand="false",
                media="false",
                **{"sort[]": "modified"},
            )
            stamps = [record["modified"] for record in page.json()["data"]]
            assert stamps == sorted(stamps) and all(stamp >= "2025-01-01" for stamp in stamps)
    finally:
        stop.set()
        worker.join()
