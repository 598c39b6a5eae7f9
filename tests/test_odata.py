"""The RESO Web API over a published snapshot: options, keys, counts, expansion, paging, errors, payloads."""

import re
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jsonschema
import orjson
import pytest
from fastapi.testclient import TestClient

from conf.settings import Settings
from graphql_odata.backends.snapshot import SnapshotBackend
from graphql_odata.odata.paging import DEFAULT_PAGE_SIZE
from pipelines.snapshot.places import places_of
from pipelines.snapshot.pointer import LAYOUT
from tests.bounded import next_links
from tests.conftest import PublishedGold, authorized_api, sandbox_records

RESOURCES = ["Property", "Member", "Office", "Media", "Contacts", "ShowingAppointment", "Lookup"]
TABLES = {
    "Property": "property",
    "Member": "member",
    "Office": "office",
    "Media": "media",
    "Contacts": "contacts",
    "ShowingAppointment": "showing_appointment",
    "Lookup": "lookup",
}
KEYS = {
    "Property": "ListingKey",
    "Member": "MemberKey",
    "Office": "OfficeKey",
    "Media": "MediaKey",
    "Contacts": "ContactKey",
    "ShowingAppointment": "ShowingAppointmentKey",
    "Lookup": "LookupKey",
}


@pytest.fixture(scope="module")
def api(published_gold: PublishedGold) -> Iterator[TestClient]:
    with authorized_api(published_gold.settings) as client:
        yield client


def wire(value: object) -> object:
    """A snapshot value as the API's JSON carries it."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def assert_odata_error(response, status: int, target: str | None, fragment: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["OData-Version"] == "4.01"
    error = response.json()["error"]
    assert set(error) == {"code", "message", "target", "details"}
    assert error["target"] == target and fragment in error["message"], error


def follow(api: TestClient, url: str, params: dict | None = None, headers: dict | None = None) -> tuple[list, int]:
    """Every record of a query by following @odata.nextLink; also how many pages it took."""
    records, pages = [], 0

    def get_page(link: str) -> dict:
        response = api.get(link, params=params if link == url else None, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    for body in next_links(get_page, url):
        records += body["value"]
        pages += 1
    return records, pages


def test_top_and_select_return_the_sandbox_values(api: TestClient, published_gold: PublishedGold) -> None:
    response = api.get("/odata/Property", params={"$top": "5", "$select": "ListingKey,ListPrice"})
    assert response.status_code == 200
    assert response.headers["OData-Version"] == "4.01"
    body = response.json()
    assert body["@odata.context"].endswith("/odata/$metadata#Property(ListingKey,ListPrice)")
    by_key = {f"QOBRIX_{r['id']}": r for r in sandbox_records(published_gold.world)}
    assert [row["ListingKey"] for row in body["value"]] == sorted(by_key)[:5]
    for row in body["value"]:
        assert set(row) == {"ListingKey", "ListPrice"}
        assert row["ListPrice"] == by_key[row["ListingKey"]]["list_selling_price_amount"]


def test_service_document_lists_every_resource(api: TestClient) -> None:
    body = api.get("/odata").json()
    assert [item["name"] for item in body["value"]] == [*sorted(RESOURCES[:-1]), "Lookup"]
    assert {"name": "Property", "kind": "EntitySet", "url": "Property"} in body["value"]


@pytest.mark.parametrize("resource", RESOURCES)
def test_every_resource_serves_every_record_by_paging(
    api: TestClient, published_gold: PublishedGold, resource: str
) -> None:
    expected = {row[KEYS[resource]]: row for row in published_gold.rows(TABLES[resource])}
    records, pages = follow(api, f"/odata/{resource}", headers={"Prefer": "odata.maxpagesize=97"})
    keys = [r[KEYS[resource]] for r in records]
    assert len(keys) == len(set(keys)) == len(expected) > 0
    assert keys == sorted(keys)
    assert pages == -(-len(expected) // 97)
    sample = records[:: max(1, len(records) // 25)]
    for record in sample:
        assert record == {name: wire(value) for name, value in expected[record[KEYS[resource]]].items()}


def test_page_size_preference_is_applied_and_said(api: TestClient) -> None:
    response = api.get("/odata/Property", params={"$select": "ListingKey"}, headers={"Prefer": "odata.maxpagesize=7"})
    assert response.headers["Preference-Applied"] == "odata.maxpagesize=7"
    assert len(response.json()["value"]) == 7
    default = api.get("/odata/Property", params={"$select": "ListingKey"})
    assert "Preference-Applied" not in default.headers
    assert len(default.json()["value"]) == DEFAULT_PAGE_SIZE


def test_top_spans_pages_and_stops_at_top(api: TestClient) -> None:
    records, pages = follow(
        api, "/odata/Property", {"$top": "25", "$select": "ListingKey"}, {"Prefer": "odata.maxpagesize=10"}
    )
    assert len(records) == 25 and pages == 3


@pytest.mark.parametrize(
    "orderby",
    [
        "BedroomsTotal asc,ListPrice desc",
        "BedroomsTotal desc",
        "StandardStatus,City desc",
        "ListingContractDate",
        "ModificationTimestamp desc",
        "ModificationTimestamp,City",
    ],
)
def test_paging_in_any_order_neither_repeats_nor_misses_rows(
    api: TestClient, published_gold: PublishedGold, orderby: str
) -> None:
    """Sort keys with many ties and nulls: the keyset (sort values + key) must still walk every row once."""
    fields = [term.split()[0] for term in orderby.split(",")]
    records, _ = follow(
        api,
        "/odata/Property",
        {"$orderby": orderby, "$select": ",".join(["ListingKey", *fields])},
        {"Prefer": "odata.maxpagesize=13"},
    )
    rows = published_gold.rows("property")
    assert sorted(r["ListingKey"] for r in records) == sorted(r["ListingKey"] for r in rows)
    descending = [term.strip().endswith("desc") for term in orderby.split(",")]

    def sort_key(record: dict) -> tuple:
        parts = []
        for name, desc in zip(fields, descending, strict=True):
            value = record[name]
            # OData: nulls first ascending, last descending.
            parts.append((value is not None, value) if not desc else (value is None, value))
        return tuple(parts)

    expected = sorted(records, key=lambda r: r["ListingKey"])
    for name, desc in reversed(list(zip(fields, descending, strict=True))):
        present = sorted((r for r in expected if r[name] is not None), key=lambda r: r[name], reverse=desc)
        absent = [r for r in expected if r[name] is None]
        expected = absent + present if not desc else present + absent
    assert [r["ListingKey"] for r in records] == [r["ListingKey"] for r in expected]


def test_replication_by_timestamp_with_shared_timestamps(api: TestClient, published_gold: PublishedGold) -> None:
    """Lookup rows share one ModificationTimestamp: replication by timestamp must still return each once."""
    rows = published_gold.rows("lookup")
    stamps = [r["ModificationTimestamp"] for r in rows]
    assert max(stamps.count(s) for s in stamps) > 50
    records, pages = follow(
        api,
        "/odata/Lookup",
        {"$filter": "ModificationTimestamp ge 2000-01-01T00:00:00Z", "$orderby": "ModificationTimestamp"},
        {"Prefer": "odata.maxpagesize=50"},
    )
    assert pages > 5
    assert sorted(r["LookupKey"] for r in records) == sorted(r["LookupKey"] for r in rows)
    assert len({r["LookupKey"] for r in records}) == len(records)


def test_count_option_and_count_segment(api: TestClient, published_gold: PublishedGold) -> None:
    rows = published_gold.rows("property")
    active = sum(r["StandardStatus"] == "Active" for r in rows)
    body = api.get(
        "/odata/Property", params={"$count": "true", "$filter": "StandardStatus eq 'Active'", "$top": "1"}
    ).json()
    assert body["@odata.count"] == active and len(body["value"]) == 1
    response = api.get("/odata/Property/$count", params={"$filter": "StandardStatus eq 'Active'"})
    assert response.status_code == 200 and response.text == str(active)
    assert response.headers["content-type"].startswith("text/plain")
    assert api.get("/odata/Media/$count").text == str(len(published_gold.rows("media")))
    only_counted = api.get("/odata/Property", params={"$count": "true", "$top": "0"})
    assert only_counted.status_code == 200
    assert only_counted.json()["value"] == [] and only_counted.json()["@odata.count"] == len(rows)
    assert "@odata.nextLink" not in only_counted.json()


def test_skip_skips(api: TestClient, published_gold: PublishedGold) -> None:
    keys = sorted(r["ListingKey"] for r in published_gold.rows("property"))
    body = api.get("/odata/Property", params={"$skip": "10", "$top": "5", "$select": "ListingKey"}).json()
    assert [r["ListingKey"] for r in body["value"]] == keys[10:15]


def test_entity_by_key(api: TestClient, published_gold: PublishedGold) -> None:
    row = published_gold.rows("property")[3]
    key = row["ListingKey"]
    body = api.get(f"/odata/Property('{key}')").json()
    assert body["@odata.context"].endswith("/$metadata#Property/$entity")
    assert {k: v for k, v in body.items() if not k.startswith("@")} == {k: wire(v) for k, v in row.items()}
    selected = api.get(f"/odata/Property(ListingKey='{key}')", params={"$select": "ListPrice"}).json()
    assert selected["ListPrice"] == wire(row["ListPrice"]) and "City" not in selected
    assert_odata_error(api.get("/odata/Property('QOBRIX_missing')"), 404, "ListingKey", "no Property")
    assert_odata_error(api.get("/odata/Property(42)"), 400, "ListingKey", "keys are strings")
    assert_odata_error(api.get("/odata/Property(MemberKey='x')"), 400, "ListingKey", "keyed by ListingKey")


def test_expand_follows_every_navigation_with_nested_options(api: TestClient, published_gold: PublishedGold) -> None:
    members = {r["MemberKey"]: r for r in published_gold.rows("member")}
    offices = {r["OfficeKey"]: r for r in published_gold.rows("office")}
    media: dict[str, list] = {}
    for row in published_gold.rows("media"):
        media.setdefault(row["ResourceRecordKey"], []).append(row)
    showings: dict[str, list] = {}
    for row in published_gold.rows("showing_appointment"):
        showings.setdefault(row["X_ListingKey"], []).append(row)
    body = api.get(
        "/odata/Property",
        params={
            "$select": "ListingKey",
            "$top": "40",
            "$expand": "ListAgent($select=MemberKey,MemberFullName;$expand=Office($select=OfficeName)),"
            "ListOffice,Media($select=MediaKey,Order;$filter=MediaCategory eq 'Photo';$orderby=Order desc;$top=3),"
            "ShowingAppointments($select=ShowingAppointmentKey)",
        },
    ).json()
    assert body["@odata.context"].endswith(
        "#Property(ListingKey,ListAgent(),ListOffice(),Media(),ShowingAppointments())"
    )
    source = {r["ListingKey"]: r for r in published_gold.rows("property")}
    checked_media = 0
    for record in body["value"]:
        listing = source[record["ListingKey"]]
        agent = members.get(listing["ListAgentKey"])
        if agent is None:
            assert record["ListAgent"] is None
        else:
            office = offices.get(agent["OfficeKey"])
            assert record["ListAgent"] == {
                "MemberKey": agent["MemberKey"],
                "MemberFullName": agent["MemberFullName"],
                "Office": None if office is None else {"OfficeName": office["OfficeName"]},
            }
        office = offices.get(listing["ListOfficeKey"])
        assert record["ListOffice"] == (None if office is None else {k: wire(v) for k, v in office.items()})
        photos = sorted(
            (m for m in media.get(listing["ListingKey"], []) if m["MediaCategory"] == "Photo"),
            key=lambda m: (m["Order"] is None, -(m["Order"] or 0), m["MediaKey"]),
        )[:3]
        assert record["Media"] == [{"MediaKey": m["MediaKey"], "Order": m["Order"]} for m in photos]
        checked_media += len(photos)
        assert sorted(s["ShowingAppointmentKey"] for s in record["ShowingAppointments"]) == sorted(
            s["ShowingAppointmentKey"] for s in showings.get(listing["ListingKey"], [])
        )
    assert checked_media > 20


def test_a_plain_expand_serves_every_related_record_whole(api: TestClient, published_gold: PublishedGold) -> None:
    """`$expand=Media` with no nested options serves each listing's media whole, the same in a collection,
    by key and beside `$select`."""
    media: dict[str, list] = {}
    for row in published_gold.rows("media"):
        media.setdefault(row["ResourceRecordKey"], []).append(row)
    body = api.get("/odata/Property", params={"$top": "60", "$expand": "Media,ShowingAppointments"}).json()
    keyed = api.get(f"/odata/Property('{body['value'][0]['ListingKey']}')", params={"$expand": "Media"}).json()
    assert keyed["Media"] == body["value"][0]["Media"]
    selected = api.get("/odata/Property", params={"$top": "60", "$select": "ListingKey", "$expand": "Media"}).json()
    assert [r["Media"] for r in selected["value"]] == [r["Media"] for r in body["value"]]
    assert sum(len(r["Media"]) for r in body["value"]) > 100
    for record in body["value"]:
        expected = sorted(media.get(record["ListingKey"], []), key=lambda m: m["MediaKey"])
        assert record["Media"] == [{k: wire(v) for k, v in m.items()} for m in expected]
        assert all(s["X_ListingKey"] == record["ListingKey"] for s in record["ShowingAppointments"])


class RecordingBackend(SnapshotBackend):
    """The snapshot backend, noting the SQL it runs."""

    def __init__(self, pointer: Path) -> None:
        super().__init__(pointer)
        self.ran: list[str] = []

    def query(self, sql: str, parameters: dict | None = None, documents: str | None = None):
        self.ran.append(sql)
        return super().query(sql, parameters, documents)


def test_a_page_of_whole_records_is_one_query_and_a_selection_reads_its_rows_after_its_keys(
    published_gold: PublishedGold,
) -> None:
    """The query ordering a page of whole records also finds where their documents lie; a `$select`
    orders the keys, then reads the selected fields of the rows stored from the first to the last."""
    backend = RecordingBackend(published_gold.settings.paths.snapshot_pointer)
    ordered = {"$top": "50", "$orderby": "ModificationTimestamp desc", "$filter": "ListPrice gt 100000"}
    with authorized_api(published_gold.settings, backend) as client:
        whole = client.get("/odata/Property", params=ordered).json()["value"]
        asked_whole, backend.ran = len(backend.ran), []
        selected = client.get("/odata/Property", params={**ordered, "$select": "ListingKey,ListPrice"}).json()["value"]
    assert asked_whole == 1 and len(backend.ran) == 2 and " BETWEEN " in backend.ran[1], "a range in stored order"
    assert (
        len(whole) == 50 and [{"ListingKey": r["ListingKey"], "ListPrice": r["ListPrice"]} for r in whole] == selected
    )


def copied_snapshots(published_gold: PublishedGold, tmp_path: Path) -> tuple[Path, dict]:
    """A copy of the published snapshots folder, to damage or change, with its pointer."""
    snapshots = tmp_path / "snapshots"
    shutil.copytree(published_gold.settings.paths.snapshots, snapshots)
    return snapshots, orjson.loads((snapshots / "CURRENT.json").read_bytes())


def test_a_plain_expand_reads_each_listing_s_media_as_one_run_and_a_broken_run_row_by_row(
    published_gold: PublishedGold, tmp_path: Path
) -> None:
    params = {"$top": "60", "$expand": "Media", "$select": "ListingKey"}
    snapshots, pointer = copied_snapshots(published_gold, tmp_path)
    reading_runs = RecordingBackend(published_gold.settings.paths.snapshot_pointer)
    with authorized_api(published_gold.settings, reading_runs) as client:
        from_runs = client.get("/odata/Property", params=params).json()["value"]
    assert not [sql for sql in reading_runs.ran if '"media' in sql], "runs found in the places index"

    listing = next(record for record in from_runs if len(record["Media"]) > 1)["ListingKey"]
    with closing(sqlite3.connect(places_of(snapshots / pointer["files"]["media"]))) as index, index:
        index.execute("UPDATE runs SET at = NULL, size = NULL WHERE value = ?", [listing])
    reading_rows = RecordingBackend(snapshots / "CURRENT.json")
    with authorized_api(published_gold.settings, reading_rows) as client:
        row_by_row = client.get("/odata/Property", params=params).json()["value"]
    assert row_by_row == from_runs
    assert any(re.search(r'"main"\."media"\s', sql) for sql in reading_rows.ran)


def test_a_record_by_key_is_found_in_the_places_index_without_sql_and_served_as_through_the_snapshot(
    published_gold: PublishedGold, tmp_path: Path
) -> None:
    """Every resource's records by key come from its SQLite places index (no SQL runs), byte for byte
    what the snapshot's own lookup serves once the places indexes are gone; an absent key is a 404."""
    snapshots, _ = copied_snapshots(published_gold, tmp_path)
    indexed = RecordingBackend(published_gold.settings.paths.snapshot_pointer)
    wanted = [("Property", "ListingKey"), ("Media", "MediaKey"), ("Member", "MemberKey"), ("Office", "OfficeKey")]
    with authorized_api(published_gold.settings, indexed) as client:
        keys = {
            name: [r[key] for r in client.get(f"/odata/{name}", params={"$select": key, "$top": "3"}).json()["value"]]
            for name, key in wanted
        }
        indexed.ran = []
        from_index = {name: [client.get(f"/odata/{name}('{k}')").content for k in keys[name]] for name in keys}
        missing = client.get("/odata/Property('no-such-listing')")
    assert indexed.ran == [] and all(keys.values())
    assert all([orjson.loads(body)[key] for body in from_index[name]] == keys[name] for name, key in wanted), (
        "each the record asked for"
    )
    assert missing.status_code == 404 and missing.json()["error"]["target"] == "ListingKey"

    for index in snapshots.glob("*/*.places"):
        index.unlink()
    through_sql = RecordingBackend(snapshots / "CURRENT.json")
    with authorized_api(published_gold.settings, through_sql) as client:
        assert {name: [client.get(f"/odata/{name}('{k}')").content for k in keys[name]] for name in keys} == from_index
    assert len(through_sql.ran) == sum(len(found) for found in keys.values())


def test_a_damaged_places_index_is_a_503_naming_it_not_a_server_error(
    published_gold: PublishedGold, tmp_path: Path
) -> None:
    snapshots, pointer = copied_snapshots(published_gold, tmp_path)
    places_of(snapshots / pointer["files"]["property"]).write_bytes(b"not a database" * 512)
    with authorized_api(published_gold.settings, SnapshotBackend(snapshots / "CURRENT.json")) as client:
        response = client.get("/odata/Property('QOBRIX_any')")
    assert response.status_code == 503 and "places index" in response.json()["error"]["message"]


def test_a_snapshot_of_a_newer_layout_is_a_503_naming_both_layouts(
    published_gold: PublishedGold, tmp_path: Path
) -> None:
    """A pipeline upgraded before the API publishes files this API cannot read: it says so, not garbage."""
    snapshots, pointer = copied_snapshots(published_gold, tmp_path)
    assert pointer["layout"] == LAYOUT
    (snapshots / "CURRENT.json").write_bytes(orjson.dumps({**pointer, "layout": LAYOUT + 1}))
    with authorized_api(published_gold.settings, SnapshotBackend(snapshots / "CURRENT.json")) as client:
        response = client.get("/odata/Property('QOBRIX_any')")
    message = response.json()["error"]["message"]
    assert response.status_code == 503
    assert f"layout {LAYOUT + 1}" in message and f"up to {LAYOUT}" in message and "upgrade" in message
    # A pointer written before it named a layout is read (as the files it names say).
    (snapshots / "CURRENT.json").write_bytes(orjson.dumps({k: v for k, v in pointer.items() if k != "layout"}))
    key = published_gold.rows("property")[0]["ListingKey"]
    with authorized_api(published_gold.settings, SnapshotBackend(snapshots / "CURRENT.json")) as client:
        assert client.get(f"/odata/Property('{key}')").json()["ListingKey"] == key


def test_metadata_xml_and_json_describe_the_same_model(api: TestClient) -> None:
    xml = api.get("/odata/$metadata", params={"$format": "application/xml"})
    assert xml.status_code == 200 and xml.headers["content-type"].startswith("application/xml")
    assert xml.headers["OData-Version"] == "4.01"
    assert b'<Property Name="StandardStatus" Type="Edm.String" MaxLength="25">' in xml.content
    assert b'<Annotation Term="RESO.OData.Metadata.LookupName" String="StandardStatus"/>' in xml.content
    assert b'<NavigationProperty Name="Media" Type="Collection(org.reso.metadata.Media)"/>' in xml.content
    document = api.get("/odata/$metadata", params={"$format": "json"}).json()
    model = document["org.reso.metadata"]
    assert model["Property"]["$Key"] == ["ListingKey"]
    assert model["Property"]["Appliances"] == {
        "$Type": "Edm.String",
        "$Collection": True,
        "$Nullable": False,
        "$MaxLength": 1024,
        "@RESO.OData.Metadata.LookupName": "Appliances",
    }
    assert model["Default"]["Property"]["$NavigationPropertyBinding"]["ListAgent"] == "Member"
    assert api.get("/odata/$metadata", headers={"Accept": "application/json"}).json() == document


def _json_schema(property_model: dict) -> dict:
    """A JSON schema of one entity's records from its CSDL JSON: every field typed, nothing else allowed."""
    scalar = {
        "Edm.String": {"type": "string"},
        "Edm.Boolean": {"type": "boolean"},
        "Edm.Int32": {"type": "integer"},
        "Edm.Int64": {"type": "integer"},
        "Edm.Decimal": {"type": "number"},
        "Edm.Double": {"type": "number"},
        "Edm.Date": {"type": "string", "format": "date"},
        "Edm.DateTimeOffset": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"},
    }
    properties = {}
    for name, described in property_model.items():
        if name.startswith("$") or described.get("$Kind") == "NavigationProperty":
            continue
        schema = dict(scalar[described["$Type"]])
        if described.get("$Collection"):
            schema = {"type": "array", "items": schema}
        elif described.get("$Nullable", True):
            schema = {"anyOf": [schema, {"type": "null"}]}
        properties[name] = schema
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


@pytest.mark.parametrize("resource", RESOURCES)
def test_every_record_matches_a_schema_built_from_our_metadata(api: TestClient, resource: str) -> None:
    model = api.get("/odata/$metadata", params={"$format": "json"}).json()["org.reso.metadata"]
    validator = jsonschema.Draft202012Validator(
        _json_schema(model[resource]), format_checker=jsonschema.FormatChecker()
    )
    records, _ = follow(api, f"/odata/{resource}", headers={"Prefer": "odata.maxpagesize=1000"})
    assert records
    for record in records:
        validator.validate(record)


@pytest.mark.parametrize(
    ("url", "params", "status", "target", "fragment"),
    [
        ("/odata/Property", {"$top": "-1"}, 400, "$top", "non-negative integer"),
        ("/odata/Property", {"$top": "abc"}, 400, "$top", "non-negative integer"),
        ("/odata/Property", {"$top": "100000"}, 400, "$top", "at most"),
        ("/odata/Property", {"$skip": "x"}, 400, "$skip", "non-negative integer"),
        ("/odata/Property", {"$select": "ListingKey,Nope"}, 400, "$select", "Nope"),
        ("/odata/Property", {"$select": "ListingKey,"}, 400, "$select", "empty item"),
        ("/odata/Property", {"$frobnicate": "1"}, 400, "$frobnicate", "not a system query option"),
        ("/odata/Property", {"$search": "pool"}, 501, "$search", "not supported"),
        ("/odata/Property", {"$count": "yes"}, 400, "$count", "true or false"),
        ("/odata/Property", {"$orderby": "Nope desc"}, 400, "$orderby", "no field 'Nope'"),
        ("/odata/Property", {"$orderby": "ListPrice sideways"}, 400, "$orderby", "Field [asc|desc]"),
        ("/odata/Property", {"$orderby": "Appliances"}, 400, "$orderby", "multi-select"),
        ("/odata/Property", {"$orderby": "ListPrice,ListPrice desc"}, 400, "$orderby", "twice"),
        ("/odata/Property", {"$expand": "Nope"}, 400, "$expand", "no navigation property 'Nope'"),
        ("/odata/Property", {"$expand": "Media($top=x)"}, 400, "$top", "non-negative integer"),
        ("/odata/Property", {"$expand": "Media($select=Nope)"}, 400, "$select", "Nope"),
        ("/odata/Property", {"$expand": "Media($filter=Order eq 'x')"}, 400, "$filter", "cannot compare"),
        ("/odata/Property", {"$expand": "Media(($top=1)"}, 400, "$expand", "unbalanced"),
        ("/odata/Property", {"$expand": "ListAgent($top=1)"}, 400, "$expand", "single record"),
        ("/odata/Property", {"$expand": "Media($skiptoken=a)"}, 400, "$skiptoken", "inside $expand"),
        ("/odata/Property", {"$expand": "ListAgent($expand=Office($expand=Nope))"}, 400, "$expand", "at most 2"),
        ("/odata/Property", {"$skiptoken": "garbage"}, 400, "$skiptoken", "not one this service issued"),
        ("/odata/Property", {"$format": "xml"}, 400, "$format", "application/json"),
        ("/odata/Property/$count", {"$top": "1"}, 400, "$top", "does not apply"),
        ("/odata/Property('x')", {"$filter": "true"}, 400, "$filter", "does not apply"),
        ("/odata/$metadata", {"$format": "csv"}, 400, "$format", "application/xml or application/json"),
        ("/odata/ResourceNotFound", {}, 404, "ResourceNotFound", "no resource"),
        ("/odata/ResourceNotFound('x')", {}, 404, "ResourceNotFound", "no resource"),
        ("/odata/ResourceNotFound/$count", {}, 404, "ResourceNotFound", "no resource"),
        ("/odata/Property('x')/Media", {}, 404, "Media", "use $expand"),
    ],
)
def test_bad_requests_get_odata_errors(
    api: TestClient, url: str, params: dict, status: int, target: str, fragment: str
) -> None:
    assert_odata_error(api.get(url, params=params), status, target, fragment)


def test_a_token_from_another_order_is_refused(api: TestClient) -> None:
    first = api.get("/odata/Property", params={"$orderby": "ListPrice"}, headers={"Prefer": "odata.maxpagesize=5"})
    token = parse_qs(urlsplit(first.json()["@odata.nextLink"]).query)["$skiptoken"][0]
    replay = api.get("/odata/Property", params={"$orderby": "City", "$skiptoken": token})
    assert_odata_error(replay, 400, "$skiptoken", "not one this service issued")


def test_no_snapshot_yet_is_503_not_500(settings: Settings) -> None:
    with authorized_api(settings) as client:
        response = client.get("/odata/Property")
        assert response.status_code == 503 and "mls2 pipeline run" in response.json()["error"]["message"]
        assert client.get("/health").json()["status"] == "unavailable"


def test_health_reports_the_snapshot(api: TestClient) -> None:
    health = api.get("/health").json()
    assert health["status"] == "ok" and health["age_seconds"] >= 0
    assert health["update_id"] and "property" in health["tables"] and "media" in health["tables"]


def test_a_defect_is_a_500_in_the_odata_shape_without_internals(published_gold: PublishedGold) -> None:
    class BrokenBackend:
        dialect = "duckdb"

        def stores_documents(self, entity) -> bool:
            return False

        def table(self, entity):
            raise RuntimeError("secret internal detail")

    with authorized_api(published_gold.settings, BrokenBackend(), raise_server_exceptions=False) as client:
        response = client.get("/odata/Property")
    assert response.status_code == 500 and response.headers["OData-Version"] == "4.01"
    assert response.json()["error"]["code"] == "InternalServerError"
    assert "secret internal detail" not in response.text
