"""RESO Web API Core requests, the metadata against the OData schemas and DD 2.0, and an independent client.

The Core request list is our own table of the Web API Core 2.0.0 test requests (RESO's
`reference-web-api-core-requests.xml`), filled with our fields; when the reference is on disk,
a test checks the table still covers every request id it lists.
"""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from fastapi.testclient import TestClient
from lxml import etree

from graphql_odata.odata.metadata import metadata_xml
from graphql_odata.schema import entity_sets
from tests.conftest import PublishedGold, authorized_api, live_api, register_test_client
from tests.test_mappings import DD, ENUM_PREFIX, allowed_types, dd_fields

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "reso"
needs_reference = pytest.mark.skipif(not REFERENCE.exists(), reason="needs ../shared/reference/reso")
CSDL_SCHEMAS = Path(__file__).resolve().parents[1] / "graphql_odata" / "certification" / "csdl"

KEY, INTEGER, DECIMAL, DATE, TIMESTAMP = (
    "ListingKey",
    "BedroomsTotal",
    "ListPrice",
    "ListingContractDate",
    ("ModificationTimestamp"),
)
SINGLE, MULTI = "StandardStatus", "Appliances"
LOW, HIGH = 1, 15


@pytest.fixture(scope="module")
def api(published_gold: PublishedGold) -> Iterator[TestClient]:
    with authorized_api(published_gold.settings) as client:
        yield client


@pytest.fixture(scope="module")
def rows(published_gold: PublishedGold) -> list[dict]:
    return published_gold.rows("property")


def core_requests(rows: list[dict]) -> dict[str, tuple[str, object]]:
    """Request id -> (URL under /odata, what the rows say it must return: a key filter or a status)."""
    multi_value = next(v for r in rows for v in r[MULTI])
    # Values found in the data (RESOScript lets a server choose its own), so `eq` has rows to return.
    decimal_low = min(r[DECIMAL] for r in rows if r[DECIMAL] is not None)
    decimal_high = max(r[DECIMAL] for r in rows if r[DECIMAL] is not None)
    today = sorted(r[DATE] for r in rows if r[DATE] is not None)[len(rows) // 3]
    stamp = sorted(r[TIMESTAMP] for r in rows)[len(rows) // 2]
    stamp_text = stamp.astimezone(timezone(timedelta(hours=-9))).isoformat()
    compare = {
        "eq": lambda a, b: a is not None and a == b,
        "ne": lambda a, b: a != b,
        "gt": lambda a, b: a is not None and a > b,
        "ge": lambda a, b: a is not None and a >= b,
        "lt": lambda a, b: a is not None and a < b,
        "le": lambda a, b: a is not None and a <= b,
    }
    requests: dict[str, tuple[str, object]] = {
        "metadata-request": ("$metadata?$format=application/xml", 200),
        "service-document": ("", 200),
        "fetch-by-key": (f"Property('{rows[0][KEY]}')?$select={KEY}", lambda r: r[KEY] == rows[0][KEY]),
        "select": (f"Property?$select={KEY},{INTEGER}", None),
        "top": (f"Property?$select={KEY}&$top=5", None),
        "skip": (f"Property?$select={KEY}&$top=5&$skip=5", None),
        "count": ("Property?$count=true", None),
        "orderby-timestamp-asc": (
            f"Property?$top=20&$select={KEY},{INTEGER},{TIMESTAMP}&$orderby={TIMESTAMP} asc",
            None,
        ),
        "orderby-timestamp-desc": (
            f"Property?$top=20&$select={KEY},{INTEGER},{TIMESTAMP}&$orderby={TIMESTAMP} desc",
            None,
        ),
        "orderby-timestamp-asc-filter-int-gt": (
            f"Property?$top=20&$select={KEY},{INTEGER},{TIMESTAMP}&$orderby={TIMESTAMP} asc&$filter={INTEGER} gt {LOW}",
            lambda r: compare["gt"](r[INTEGER], LOW),
        ),
        "orderby-timestamp-desc-filter-int-gt": (
            f"Property?$top=20&$select={KEY},{INTEGER},{TIMESTAMP}"
            f"&$orderby={TIMESTAMP} desc&$filter={INTEGER} gt {LOW}",
            lambda r: compare["gt"](r[INTEGER], LOW),
        ),
        "filter-int-and": (
            f"Property?$select={KEY},{INTEGER}&$filter={INTEGER} gt {LOW} and {INTEGER} lt {HIGH}",
            lambda r: compare["gt"](r[INTEGER], LOW) and compare["lt"](r[INTEGER], HIGH),
        ),
        "filter-int-or": (
            f"Property?$select={KEY},{INTEGER}&$filter={INTEGER} lt {HIGH} or {INTEGER} gt {LOW}",
            lambda r: compare["lt"](r[INTEGER], HIGH) or compare["gt"](r[INTEGER], LOW),
        ),
        "filter-int-not": (f"Property?$select={KEY},{INTEGER}&$filter=not ({INTEGER} le -1)", lambda r: True),
        "filter-datetime-lt": (
            f"Property?$select={KEY},{TIMESTAMP}&$filter={TIMESTAMP} lt now()",
            lambda r: compare["lt"](r[TIMESTAMP], datetime.now(UTC)),
        ),
        "filter-datetime-le": (
            f"Property?$select={KEY},{TIMESTAMP}&$filter={TIMESTAMP} le now()",
            lambda r: compare["le"](r[TIMESTAMP], datetime.now(UTC)),
        ),
        "filter-enum-single-has": (f"Property?$select={KEY},{SINGLE}&$filter={SINGLE} has 'Active'", 400),
        "filter-enum-single-eq": (
            f"Property?$select={KEY},{SINGLE}&$filter={SINGLE} eq 'Active'",
            lambda r: r[SINGLE] == "Active",
        ),
        "filter-enum-single-ne": (
            f"Property?$select={KEY},{SINGLE}&$filter={SINGLE} ne 'Active'",
            lambda r: r[SINGLE] != "Active",
        ),
        "filter-enum-multi-has": (f"Property?$select={KEY},{MULTI}&$filter={MULTI} has '{multi_value}'", 400),
        "filter-enum-multi-has-and": (
            f"Property?$select={KEY},{MULTI}&$filter={MULTI} has '{multi_value}' and {MULTI} has 'Dryer'",
            400,
        ),
        "filter-coll-enum-any": (
            f"Property?$select={KEY},{MULTI}&$filter={MULTI}/any(enum:enum eq '{multi_value}')",
            lambda r: multi_value in r[MULTI],
        ),
        "filter-coll-enum-all": (
            f"Property?$select={KEY},{MULTI}&$filter={MULTI}/all(enum:enum eq '{multi_value}')",
            lambda r: all(v == multi_value for v in r[MULTI]),
        ),
        "response-code-400": ("Property?$filter=BadField eq 'SoBad'", 400),
        "response-code-404": ("ResourceNotFound", 404),
    }
    for op, test in compare.items():
        requests[f"filter-int-{op}"] = (
            f"Property?$select={KEY},{INTEGER}&$filter={INTEGER} {op} {LOW}",
            lambda r, test=test: test(r[INTEGER], LOW),
        )
        value = decimal_high if op in {"lt", "le"} else decimal_low
        requests[f"filter-decimal-{op}"] = (
            f"Property?$select={KEY},{DECIMAL}&$filter={DECIMAL} {op} {value}",
            lambda r, test=test, value=value: test(r[DECIMAL], value),
        )
        requests[f"filter-date-{op}"] = (
            f"Property?$select={KEY},{DATE}&$filter={DATE} {op} {today.isoformat()}",
            lambda r, test=test: test(r[DATE], today),
        )
        if op not in {"lt", "le"}:
            requests[f"filter-datetime-{op}"] = (
                f"Property?$select={KEY},{TIMESTAMP}&$filter={TIMESTAMP} {op} {stamp_text}",
                lambda r, test=test: test(r[TIMESTAMP], stamp),
            )
    return requests


REQUEST_IDS = sorted(
    core_requests([{KEY: "k", MULTI: ["v"], DECIMAL: Decimal(1), DATE: date.today(), TIMESTAMP: datetime.now(UTC)}])
)


@needs_reference
def test_our_table_covers_every_core_request() -> None:
    document = etree.parse(str(REFERENCE / "commander" / "reference-web-api-core-requests.xml"))
    listed = {element.get("RequestId") for element in document.iter() if element.get("RequestId")}
    assert listed == set(REQUEST_IDS)


@pytest.mark.parametrize("request_id", REQUEST_IDS)
def test_core_request(api: TestClient, rows: list[dict], request_id: str) -> None:
    url, expected = core_requests(rows)[request_id]
    response = api.get(f"/odata/{url}", headers={"Prefer": "odata.maxpagesize=1000"})
    assert response.headers["OData-Version"] == "4.01"
    if isinstance(expected, int):
        assert response.status_code == expected, response.text
        if expected >= 400:
            assert set(response.json()["error"]) == {"code", "message", "target", "details"}
        return
    assert response.status_code == 200, response.text
    body = response.json()
    if request_id == "fetch-by-key":
        assert body[KEY] == rows[0][KEY] and set(body) == {"@odata.context", KEY}
        return
    returned = [r[KEY] for r in body["value"]]
    selected = url.split("$select=")[1].split("&")[0].split(",") if "$select=" in url else None
    for record in body["value"]:
        assert selected is None or set(record) == set(selected)
    if "$top=" in url:
        assert len(returned) == min(int(url.split("$top=")[1].split("&")[0]), len(rows))
    if request_id == "skip":
        assert returned == sorted(r[KEY] for r in rows)[5:10]
    if request_id == "count":
        assert body["@odata.count"] == len(rows)
    if "$orderby=" in url:
        stamps = [r[TIMESTAMP] for r in body["value"]]
        assert stamps == sorted(stamps, reverse=url.endswith("desc") or " desc&" in url)
    if callable(expected):
        matching = {r[KEY] for r in rows if expected(r)}
        assert set(returned) <= matching
        if "$top=" not in url:
            assert set(returned) == matching and matching


def reso_commander_schemas(folder: Path) -> Path | None:
    """OData 4.0 errata03 schemas as RESO's Web API Commander ships them (../shared/reference)."""
    xsd = REFERENCE / "xsd"
    if not xsd.exists():
        return None
    edmx = (xsd / "edmx.4.0.errata03.xsd").read_text(encoding="utf-8")
    # The shipped EDMX schema imports the EDM namespace without a location: point it at the file beside it.
    edmx = edmx.replace(
        'namespace="http://docs.oasis-open.org/odata/ns/edm"',
        'namespace="http://docs.oasis-open.org/odata/ns/edm" schemaLocation="edm.4.0.errata03.xsd"',
        1,
    )
    (folder / "edmx.xsd").write_text(edmx, encoding="utf-8")
    (folder / "edm.4.0.errata03.xsd").write_bytes((xsd / "edm.4.0.errata03.xsd").read_bytes())
    return folder / "edmx.xsd"


def oasis_schemas(folder: Path) -> Path | None:
    """OASIS CSDL 4.01 schemas from the npm package odata-csdl (`make csdl-schemas`; CI fetches them)."""
    edmx = CSDL_SCHEMAS / "edmx.xsd"
    return edmx if edmx.exists() else None


@pytest.mark.parametrize("schemas", [reso_commander_schemas, oasis_schemas], ids=["4.0-errata03", "4.01"])
def test_metadata_validates_against_the_odata_csdl_schemas(schemas, tmp_path: Path) -> None:
    edmx = schemas(tmp_path)
    if edmx is None:
        pytest.skip(f"{schemas.__doc__} not on this machine")
    schema = etree.XMLSchema(etree.parse(str(edmx)))
    document = etree.fromstring(metadata_xml())
    assert schema.validate(document), schema.error_log
    # The schemas do reject a broken document: an entity type without its name.
    broken = etree.fromstring(metadata_xml())
    del broken.find(".//{http://docs.oasis-open.org/odata/ns/edm}EntityType").attrib["Name"]
    assert not schema.validate(broken)


def test_every_standard_field_and_navigation_in_the_metadata_is_dd_2_0() -> None:
    """Every non-`X_` property and navigation of `$metadata` agrees with DD 2.0 (the committed extract)."""
    document = etree.fromstring(metadata_xml())
    edm = {"edm": "http://docs.oasis-open.org/odata/ns/edm"}
    checked = 0
    for entity_type in document.iterfind(".//edm:EntityType", edm):
        resource = entity_type.get("Name")
        properties = list(entity_type.iterfind("edm:Property", edm))
        assert [p.get("Name") for p in properties] == list(entity_sets()[resource].fields)
        if resource == "Lookup":
            assert {p.get("Name"): p.get("Type") for p in properties} == {
                name: definition["type"] for name, definition in dd_fields("Lookup").items()
            }
            continue
        for prop in properties:
            name = prop.get("Name")
            if name.startswith("X_"):
                continue
            definition = dd_fields(resource)[name]
            assert prop.get("Type") in allowed_types(definition), f"{resource}.{name}"
            annotation = prop.find("edm:Annotation", edm)
            if (
                definition["type"].startswith(ENUM_PREFIX)
                and definition["type"].removeprefix(ENUM_PREFIX) in DD["lookups"]
            ):
                assert annotation.get("String") == definition["type"].removeprefix(ENUM_PREFIX), name
            checked += 1
        for link in entity_type.iterfind("edm:NavigationProperty", edm):
            definition = dd_fields(resource).get(link.get("Name"))
            if definition is None:
                assert link.get("Name") == "ShowingAppointments"  # the one local link; DD 2.0 has none there
                continue
            assert definition.get("isExpansion") and link.get("Type") == definition["type"], link.get("Name")
    assert checked > 150


@pytest.fixture(scope="module")
def live_server(published_gold: PublishedGold) -> Iterator[str]:
    """The API on a real port, for a client that speaks HTTP itself."""
    with live_api(published_gold.settings) as base:
        yield f"{base}/odata/"


def test_an_independent_odata_client_reads_and_queries(
    live_server: str, rows: list[dict], published_gold: PublishedGold
) -> None:
    from odata import ODataService

    client_id, secret = register_test_client(published_gold.settings)
    grant = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    token = requests.post(live_server.replace("/odata/", "/oauth/token"), data=grant, timeout=10).json()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token['access_token']}"
    service = ODataService(live_server, reflect_entities=True, session=session)
    assert {"Property", "Member", "Office", "Media", "Lookup"} <= set(service.entities)
    listing = service.entities["Property"]
    query = (
        service.query(listing)
        .filter(listing.ListPrice > 100000)
        .filter(listing.BedroomsTotal >= 2)
        .order_by(listing.ListPrice.desc())
        .limit(15)
    )
    found = [(p.ListingKey, p.ListPrice) for p in query]
    expected = sorted(
        (r for r in rows if r["ListPrice"] and r["ListPrice"] > 100000 and (r["BedroomsTotal"] or 0) >= 2),
        key=lambda r: (-r["ListPrice"], r[KEY]),
    )[:15]
    assert found == [(r[KEY], float(r["ListPrice"])) for r in expected]
    media = [m.MediaKey for m in service.query(service.entities["Media"])]  # many pages by @odata.nextLink
    assert sorted(media) == sorted(r["MediaKey"] for r in published_gold.rows("media"))
    assert len(media) > 1000
