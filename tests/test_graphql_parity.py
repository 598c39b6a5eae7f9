"""The same questions asked as OData and as GraphQL, each written by hand in its own language, must
return the same records in the same order with the same values (both read through one query model,
so a difference is a defect of one front end)."""

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from graphql_odata.graphql.where import navigation_field
from graphql_odata.schema import EntitySet, entity_sets
from tests.bounded import next_links
from tests.conftest import PublishedGold, authorized_api

P = "ListingKey ListPrice City StandardStatus BedroomsTotal"
P_ODATA = "$select=ListingKey,ListPrice,City,StandardStatus,BedroomsTotal"

CORPUS: list[tuple[str, str]] = [
    # Collections, order and size
    (f"Property?{P_ODATA}&$top=10", f"{{ properties(first: 10) {{ nodes {{ {P} }} }} }}"),
    (f"Property?{P_ODATA}&$orderby=ListPrice desc&$top=15",
     f"{{ properties(first: 15, orderBy: [{{ListPrice: desc}}]) {{ nodes {{ {P} }} }} }}"),
    (f"Property?{P_ODATA}&$orderby=City,ListPrice desc&$top=25",
     f"{{ properties(first: 25, orderBy: [{{City: asc}}, {{ListPrice: desc}}]) {{ nodes {{ {P} }} }} }}"),
    (f"Property?{P_ODATA}&$orderby=BedroomsTotal&$top=20",
     f"{{ properties(first: 20, orderBy: [{{BedroomsTotal: asc}}]) {{ nodes {{ {P} }} }} }}"),
    ("Property?$select=ListingKey,ModificationTimestamp&$orderby=ModificationTimestamp desc&$top=30",
     "{ properties(first: 30, orderBy: [{ModificationTimestamp: desc}]) {"
     " nodes { ListingKey ModificationTimestamp } } }"),
    ("Member?$top=50", "{ members(first: 50) { nodes { %MEMBER% } } }"),
    ("Office", "{ offices { nodes { %OFFICE% } } }"),
    ("Media?$select=MediaKey,ResourceRecordKey,Order,MediaCategory&$orderby=ResourceRecordKey,Order&$top=60",
     "{ media(first: 60, orderBy: [{ResourceRecordKey: asc}, {Order: asc}]) {"
     " nodes { MediaKey ResourceRecordKey Order MediaCategory } } }"),
    ("Contacts?$select=ContactKey,FirstName,LastName&$top=40",
     "{ contacts(first: 40) { nodes { ContactKey FirstName LastName } } }"),
    ("ShowingAppointment?$select=ShowingAppointmentKey,ShowingAppointmentStartTime,X_PriceAssessment&$top=40",
     "{ showingAppointments(first: 40) { nodes { ShowingAppointmentKey ShowingAppointmentStartTime"
     " X_PriceAssessment } } }"),
    ("Lookup?$filter=LookupName eq 'StandardStatus'&$orderby=LookupValue",
     '{ lookups(where: {LookupName: {_eq: "StandardStatus"}}, orderBy: [{LookupValue: asc}]) {'
     " nodes { LookupKey LookupName LookupValue StandardLookupValue LegacyODataValue ModificationTimestamp } } }"),
    # Comparisons
    (f"Property?{P_ODATA}&$filter=City eq 'Paphos'",
     f'{{ properties(where: {{City: {{_eq: "Paphos"}}}}) {{ nodes {{ {P} }} }} }}'),
    (f"Property?{P_ODATA}&$filter=City ne 'Paphos'&$top=200",
     f'{{ properties(first: 200, where: {{City: {{_neq: "Paphos"}}}}) {{ nodes {{ {P} }} }} }}'),
    (f"Property?{P_ODATA}&$filter=ListPrice gt 500000",
     f'{{ properties(where: {{ListPrice: {{_gt: "500000"}}}}) {{ nodes {{ {P} }} }} }}'),
    (f"Property?{P_ODATA}&$filter=ListPrice ge 440100",
     f'{{ properties(where: {{ListPrice: {{_gte: "440100"}}}}) {{ nodes {{ {P} }} }} }}'),
    (f"Property?{P_ODATA}&$filter=ListPrice lt 250000.5",
     f'{{ properties(where: {{ListPrice: {{_lt: "250000.5"}}}}) {{ nodes {{ {P} }} }} }}'),
    (f"Property?{P_ODATA}&$filter=BedroomsTotal le 2",
     f"{{ properties(where: {{BedroomsTotal: {{_lte: 2}}}}) {{ nodes {{ {P} }} }} }}"),
    (f"Property?{P_ODATA}&$filter=BedroomsTotal eq null",
     f"{{ properties(where: {{BedroomsTotal: {{_is_null: true}}}}) {{ nodes {{ {P} }} }} }}"),
    (f"Property?{P_ODATA}&$filter=BedroomsTotal ne null&$top=300",
     f"{{ properties(first: 300, where: {{BedroomsTotal: {{_is_null: false}}}}) {{ nodes {{ {P} }} }} }}"),
    (f"Property?{P_ODATA}&$filter=BedroomsTotal eq null",
     f"{{ properties(where: {{BedroomsTotal: {{_eq: null}}}}) {{ nodes {{ {P} }} }} }}"),
    (f"Property?{P_ODATA}&$filter=StandardStatus in ('Active','Pending')",
     f'{{ properties(where: {{StandardStatus: {{_in: ["Active", "Pending"]}}}}) {{ nodes {{ {P} }} }} }}'),
    (f"Property?{P_ODATA}&$filter=not (StandardStatus in ('Active'))&$top=300",
     f'{{ properties(first: 300, where: {{StandardStatus: {{_nin: ["Active"]}}}}) {{ nodes {{ {P} }} }} }}'),
    (f"Property?{P_ODATA}&$filter=NewConstructionYN eq true",
     f"{{ properties(where: {{NewConstructionYN: {{_eq: true}}}}) {{ nodes {{ {P} }} }} }}"),
    (f"Property?{P_ODATA}&$filter=ListingContractDate ge 2024-06-01",
     f'{{ properties(where: {{ListingContractDate: {{_gte: "2024-06-01"}}}}) {{ nodes {{ {P} }} }} }}'),
    (f"Property?{P_ODATA}&$filter=ModificationTimestamp lt 2025-01-01T00:00:00%2B02:00",
     f'{{ properties(where: {{ModificationTimestamp: {{_lt: "2025-01-01T00:00:00+02:00"}}}}) {{ nodes {{ {P} }} }} }}'),
    (f"Property?{P_ODATA}&$filter=X_DistanceFromBeach lt 1500.5",
     f"{{ properties(where: {{X_DistanceFromBeach: {{_lt: 1500.5}}}}) {{ nodes {{ {P} }} }} }}"),
    # Text
    (f"Property?{P_ODATA}&$filter=startswith(City,'L')",
     f'{{ properties(where: {{City: {{_like: "L%"}}}}) {{ nodes {{ {P} }} }} }}'),
    (f"Property?{P_ODATA}&$filter=endswith(City,'a')",
     f'{{ properties(where: {{City: {{_like: "%a"}}}}) {{ nodes {{ {P} }} }} }}'),
    (f"Property?{P_ODATA}&$filter=contains(City,'ar')",
     f'{{ properties(where: {{City: {{_like: "%ar%"}}}}) {{ nodes {{ {P} }} }} }}'),
    (f"Property?{P_ODATA}&$filter=contains(tolower(City),'pa')",
     f'{{ properties(where: {{City: {{_ilike: "%PA%"}}}}) {{ nodes {{ {P} }} }} }}'),
    (f"Property?{P_ODATA}&$filter=City eq 'St Julian''s'",
     f'{{ properties(where: {{City: {{_eq: "St Julian\'s"}}}}) {{ nodes {{ {P} }} }} }}'),
    # Multi-select lookups
    (f"Property?{P_ODATA}&$filter=Appliances/any(a: a eq 'Dishwasher')",
     f'{{ properties(where: {{Appliances: {{_contains_any: ["Dishwasher"]}}}}) {{ nodes {{ {P} }} }} }}'),
    (f"Property?{P_ODATA}&$filter=Appliances/any(a: a in ('Dryer','Oven'))",
     f'{{ properties(where: {{Appliances: {{_contains_any: ["Dryer", "Oven"]}}}}) {{ nodes {{ {P} }} }} }}'),
    (f"Property?{P_ODATA}&$filter=Appliances/any(a: a eq 'Dishwasher') and Appliances/any(a: a eq 'Dryer')",
     f'{{ properties(where: {{Appliances: {{_contains_all: ["Dishwasher", "Dryer"]}}}}) {{ nodes {{ {P} }} }} }}'),
    (f"Property?{P_ODATA}&$filter=not Appliances/any()&$top=300",
     f"{{ properties(first: 300, where: {{Appliances: {{_is_empty: true}}}}) {{ nodes {{ {P} }} }} }}"),
    # Combinations
    (f"Property?{P_ODATA}&$filter=City eq 'Limassol' and ListPrice ge 200000 and ListPrice le 600000",
     f'{{ properties(where: {{City: {{_eq: "Limassol"}}, ListPrice: {{_gte: "200000", _lte: "600000"}}}}) {{'
     f" nodes {{ {P} }} }} }}"),
    (f"Property?{P_ODATA}&$filter=City eq 'Paphos' or BedroomsTotal gt 4",
     f'{{ properties(where: {{_or: [{{City: {{_eq: "Paphos"}}}}, {{BedroomsTotal: {{_gt: 4}}}}]}}) {{'
     f" nodes {{ {P} }} }} }}"),
    (f"Property?{P_ODATA}&$filter=not (City eq 'Paphos')&$top=300",
     f'{{ properties(first: 300, where: {{_not: {{City: {{_eq: "Paphos"}}}}}}) {{ nodes {{ {P} }} }} }}'),
    (f"Property?{P_ODATA}&$filter=(BedroomsTotal ge 2 and BedroomsTotal le 3) or City eq 'Athens'&$orderby=ListPrice",
     f"{{ properties(orderBy: [{{ListPrice: asc}}], where: {{_or: [{{_and: [{{BedroomsTotal: {{_gte: 2}}}},"
     f' {{BedroomsTotal: {{_lte: 3}}}}]}}, {{City: {{_eq: "Athens"}}}}]}}) {{ nodes {{ {P} }} }} }}'),
    # Related records
    (f"Property?{P_ODATA}&$filter=Media/any(m: m/MediaCategory eq 'Document')",
     f'{{ properties(where: {{media: {{MediaCategory: {{_eq: "Document"}}}}}}) {{ nodes {{ {P} }} }} }}'),
    (f"Property?{P_ODATA}&$filter=Media/any(m: m/MediaCategory eq 'Photo' and m/Order eq 0) and BedroomsTotal ge 3",
     f'{{ properties(where: {{media: {{MediaCategory: {{_eq: "Photo"}}, Order: {{_eq: 0}}}},'
     f" BedroomsTotal: {{_gte: 3}}}}) {{ nodes {{ {P} }} }} }}"),
    (f"Property?{P_ODATA}&$filter=ListAgent/any(a: a/MemberLastName eq 'Ioannou')",
     f'{{ properties(where: {{listAgent: {{MemberLastName: {{_eq: "Ioannou"}}}}}}) {{ nodes {{ {P} }} }} }}'),
    (f"Property?{P_ODATA}&$filter=ListAgent/any(a: a/Office/any(o: o/OfficeName ne 'none'))&$top=300",
     f'{{ properties(first: 300, where: {{listAgent: {{office: {{OfficeName: {{_neq: "none"}}}}}}}}) {{'
     f" nodes {{ {P} }} }} }}"),
    ("Member?$select=MemberKey,MemberFullName&$filter=Office/any(o: o/OfficeKey ne null)",
     "{ members(where: {office: {OfficeKey: {_is_null: false}}}) { nodes { MemberKey MemberFullName } } }"),
    # Nested records with their own options
    ("Property?$select=ListingKey&$top=10&$expand=Media($select=MediaKey,Order;$orderby=Order desc;$top=3)",
     "{ properties(first: 10) { nodes { ListingKey media(orderBy: [{Order: desc}], first: 3) {"
     " MediaKey Order } } } }"),
    ("Property?$select=ListingKey&$top=10"
     "&$expand=Media($select=MediaKey,MediaCategory;$filter=MediaCategory eq 'Photo')",
     '{ properties(first: 10) { nodes { ListingKey media(where: {MediaCategory: {_eq: "Photo"}}) {'
     " MediaKey MediaCategory } } } }"),
    ("Property?$select=ListingKey&$top=12&$expand=ListAgent($select=MemberKey,MemberFullName;"
     "$expand=Office($select=OfficeKey,OfficeName)),ListOffice($select=OfficeKey)",
     "{ properties(first: 12) { nodes { ListingKey"
     " listAgent { MemberKey MemberFullName office { OfficeKey OfficeName } } listOffice { OfficeKey } } } }"),
    ("Property?$select=ListingKey&$top=20&$expand=ShowingAppointments($select=ShowingAppointmentKey;"
     "$orderby=ShowingAppointmentStartTime desc;$top=2)",
     "{ properties(first: 20) { nodes { ListingKey showingAppointments(orderBy: [{ShowingAppointmentStartTime: desc}],"
     " first: 2) { ShowingAppointmentKey } } } }"),
    ("Property?$select=ListingKey&$top=8&$expand=CoListAgent($select=MemberKey)",
     "{ properties(first: 8) { nodes { ListingKey coListAgent { MemberKey } } } }"),
    ("Member?$select=MemberKey&$expand=Office($select=OfficeName)",
     "{ members { nodes { MemberKey office { OfficeName } } } }"),
    ("Contacts?$select=ContactKey&$top=15&$expand=OwnerMember($select=MemberKey,MemberFullName)",
     "{ contacts(first: 15) { nodes { ContactKey ownerMember { MemberKey MemberFullName } } } }"),
    # Whole records
    ("Property?$top=5&$orderby=ListingKey desc",
     "{ properties(first: 5, orderBy: [{ListingKey: desc}]) { nodes { %PROPERTY% } } }"),
    ("Media?$top=20", "{ media(first: 20) { nodes { %MEDIA% } } }"),
    ("Property?$top=4&$orderby=ListPrice&$expand=Media,ListAgent($expand=Office)",
     "{ properties(first: 4, orderBy: [{ListPrice: asc}]) { nodes { %PROPERTY% media { %MEDIA% }"
     " listAgent { %MEMBER% office { %OFFICE% } } } } }"),
    ("Property?$top=3&$orderby=City desc&$expand=Media",
     "{ properties(first: 3, orderBy: [{City: desc}]) { nodes { __typename %PROPERTY% media { %MEDIA% } } } }"),
]  # fmt: skip


@pytest.fixture(scope="module")
def api(published_gold: PublishedGold) -> Iterator[TestClient]:
    with authorized_api(published_gold.settings) as client:
        yield client


def _whole(resource: str) -> str:
    return " ".join(entity_sets()[resource].fields)


def graphql_text(query: str) -> str:
    for resource in ("Property", "Member", "Office", "Media"):
        query = query.replace(f"%{resource.upper()}%", _whole(resource))
    return query


def normalised(entity: EntitySet, record: dict, *, graphql: bool) -> dict:
    """A record's values as Python values of their field types; navigation under its OData name."""
    links = {navigation_field(link.name) if graphql else link.name: link for link in entity.navigation.values()}
    result = {}
    for name, value in record.items():
        if name.startswith("@") or name == "__typename":
            continue
        if name in links:
            link = links[name]
            target = entity_sets()[link.resource]
            if link.many:
                result[link.name] = [normalised(target, item, graphql=graphql) for item in value]
            else:
                result[link.name] = None if value is None else normalised(target, value, graphql=graphql)
            continue
        kind = entity.fields[name].type
        if value is None:
            result[name] = None
        elif kind == "Edm.Decimal":
            result[name] = Decimal(str(value))
        elif kind == "Edm.DateTimeOffset":
            result[name] = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
        elif kind == "Edm.Date":
            result[name] = date.fromisoformat(value)
        else:
            result[name] = value
    return result


def test_the_corpus_is_large() -> None:
    assert len(CORPUS) >= 50 and len(set(CORPUS)) == len(CORPUS)


def odata_records(api: TestClient, url: str) -> list[dict]:
    """Every record of an OData answer, following @odata.nextLink to the end."""
    return [record for page in next_links(lambda link: _ok(api.get(link)), url) for record in page["value"]]


def graphql_records(api: TestClient, query: str, *, follow: bool) -> list[dict]:
    """The nodes of a connection's first page, or (`follow`) of every page, by its end cursor."""
    root = query.split("{", 2)[1].split("(")[0].strip().split()[0]
    query = query.replace("nodes {", "pageInfo { hasNextPage endCursor } nodes {", 1)
    records, after = [], None
    for _ in range(50):
        paged = query
        if after is not None:
            opened = f"{root}(" if f"{root}(" in query else None
            paged = (
                query.replace(opened, f'{root}(after: "{after}", ', 1)
                if opened
                else query.replace(f"{root} {{", f'{root}(after: "{after}") {{', 1)
            )
        answered = api.post("/graphql", json={"query": paged})
        assert answered.status_code == 200 and "errors" not in answered.json(), answered.json()
        (connection,) = answered.json()["data"].values()
        records += connection["nodes"]
        if not follow or not connection["pageInfo"]["hasNextPage"]:
            return records
        after = connection["pageInfo"]["endCursor"]
    raise AssertionError("paging did not end within 50 pages")


def _ok(response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(("odata", "graphql"), CORPUS, ids=[f"{n}:{odata}" for n, (odata, _) in enumerate(CORPUS)])
def test_odata_and_graphql_return_the_same_records(api: TestClient, odata: str, graphql: str) -> None:
    resource = odata.split("?")[0]
    entity = entity_sets()[resource]
    expected = [normalised(entity, record, graphql=False) for record in odata_records(api, f"/odata/{odata}")]
    # `$top` caps the answer; `first` is a page size: compare its first page then, else every page
    nodes = graphql_records(api, graphql_text(graphql), follow="$top=" not in odata)
    records = [normalised(entity, record, graphql=True) for record in nodes]
    assert expected, "an empty answer compares nothing"
    assert records == expected
