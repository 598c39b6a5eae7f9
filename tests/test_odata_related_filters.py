"""`$filter` on related records: `Nav/any(r: r/Field ...)` and `Nav/all(...)`, checked against Python
over the snapshot's own rows (the same compiler serves GraphQL's `where` on relations)."""

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from tests.bounded import next_links
from tests.conftest import PublishedGold, authorized_api


@pytest.fixture(scope="module")
def api(published_gold: PublishedGold) -> Iterator[TestClient]:
    with authorized_api(published_gold.settings) as client:
        yield client


@pytest.fixture(scope="module")
def gold(published_gold: PublishedGold) -> dict[str, list[dict]]:
    return {
        table: published_gold.rows(table) for table in ("property", "media", "member", "office", "showing_appointment")
    }


def keys_served(api: TestClient, filter_text: str) -> set[str]:
    url = "/odata/Property?" + f"$select=ListingKey&$filter={filter_text}"
    pages = next_links(lambda link: _ok(api.get(link)), url)
    return {row["ListingKey"] for page in pages for row in page["value"]}


def _ok(response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def listings(gold: dict, test: Callable[[dict], bool]) -> set[str]:
    return {row["ListingKey"] for row in gold["property"] if test(row)}


def media_of(gold: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for media in gold["media"]:
        found.setdefault(media["ResourceRecordKey"], []).append(media)
    return found


def test_any_over_a_collection_keeps_listings_with_a_matching_related_record(api: TestClient, gold: dict) -> None:
    media = media_of(gold)
    expected = listings(gold, lambda p: any(m["MediaCategory"] == "Document" for m in media.get(p["ListingKey"], [])))
    assert 0 < len(expected) < len(gold["property"])
    assert keys_served(api, "Media/any(m: m/MediaCategory eq 'Document')") == expected


def test_all_over_a_collection_is_true_for_listings_without_related_records(api: TestClient, gold: dict) -> None:
    viewings: dict[str, list[dict]] = {}
    for viewing in gold["showing_appointment"]:
        viewings.setdefault(viewing["X_ListingKey"], []).append(viewing)
    expected = listings(
        gold, lambda p: all((v["X_PriceAssessment"] or 0) >= 3 for v in viewings.get(p["ListingKey"], []))
    )
    without = listings(gold, lambda p: p["ListingKey"] not in viewings)
    assert without and without < expected and len(expected) < len(gold["property"])
    assert keys_served(api, "ShowingAppointments/all(v: v/X_PriceAssessment ge 3)") == expected
    media = media_of(gold)
    expected = listings(gold, lambda p: all(m["Order"] < 2 for m in media.get(p["ListingKey"], [])))
    assert keys_served(api, "Media/all(m: m/Order lt 2)") == expected


def test_any_without_a_condition_asks_for_at_least_one_related_record(api: TestClient, gold: dict) -> None:
    media = media_of(gold)
    assert keys_served(api, "Media/any()") == listings(gold, lambda p: p["ListingKey"] in media)
    assert keys_served(api, "not Media/any()") == listings(gold, lambda p: p["ListingKey"] not in media)


def test_a_single_related_record_and_its_own_relation_filter_listings(api: TestClient, gold: dict) -> None:
    offices = {o["OfficeKey"]: o for o in gold["office"]}
    members = {m["MemberKey"]: m for m in gold["member"]}
    agent = members[gold["property"][0]["ListAgentKey"]]
    office_name = offices[agent["OfficeKey"]]["OfficeName"]
    expected = listings(
        gold, lambda p: members.get(p["ListAgentKey"], {}).get("MemberLastName") == agent["MemberLastName"]
    )
    assert 0 < len(expected) < len(gold["property"])
    last_name = agent["MemberLastName"].replace("'", "''")
    assert keys_served(api, f"ListAgent/any(a: a/MemberLastName eq '{last_name}')") == expected
    in_office = f"ListAgent/any(a: a/MemberLastName eq '{last_name}' and a/Office/any(o: o/OfficeName eq '{{}}'))"
    assert keys_served(api, in_office.format(office_name.replace("'", "''"))) == expected
    assert keys_served(api, in_office.format("No such office")) == set()


def test_related_filters_combine_with_the_listings_own_fields_and_count(api: TestClient, gold: dict) -> None:
    media = media_of(gold)
    expected = listings(
        gold,
        lambda p: (
            (p["BedroomsTotal"] or 0) >= 3
            and any(m["MediaCategory"] == "Photo" and m["Order"] == 0 for m in media.get(p["ListingKey"], []))
        ),
    )
    text = "BedroomsTotal ge 3 and Media/any(m: m/MediaCategory eq 'Photo' and m/Order eq 0)"
    assert keys_served(api, text) == expected
    counted = api.get("/odata/Property/$count", params={"$filter": text})
    assert counted.status_code == 200 and int(counted.text) == len(expected)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("Media/any(m: City eq 'Paphos')", "m/Field"),
        ("ListAgent/MemberLastName eq 'Smith'", "ListAgent/any(a: a/MemberLastName eq 'Smith')"),
        ("Media/any(m: m/City eq 'Paphos')", "Media has no field 'City'"),
        ("Media/any(m: m/Order eq 'first')", "cannot compare"),
    ],
)
def test_misuse_of_related_filters_is_a_400_that_says_how(api: TestClient, text: str, named: str) -> None:
    response = api.get("/odata/Property", params={"$filter": text})
    assert response.status_code == 400
    assert named in response.json()["error"]["message"]
