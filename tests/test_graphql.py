"""`/graphql` through HTTP on the published sandbox: every resource by key and as a connection, every
`where` operator against Python over the same rows, nested fields with their own arguments,
cursors, limits, errors and access."""

import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from graphql_odata.graphql.types import key_argument, root_field_names
from graphql_odata.schema import entity_sets
from tests.conftest import PublishedGold, authorized_api


@pytest.fixture(scope="module")
def api(published_gold: PublishedGold) -> Iterator[TestClient]:
    with authorized_api(published_gold.settings) as client:
        yield client


@pytest.fixture(scope="module")
def gold(published_gold: PublishedGold) -> dict[str, list[dict]]:
    return {entity.table_name: published_gold.rows(entity.table_name) for entity in entity_sets().values()}


def run(api: TestClient, query: str, variables: dict | None = None) -> dict:
    response = api.post("/graphql", json={"query": query, "variables": variables or {}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def errors_of(api: TestClient, query: str, variables: dict | None = None) -> list[dict]:
    response = api.post("/graphql", json={"query": query, "variables": variables or {}})
    assert response.status_code in (200, 400), response.text
    body = response.json()
    assert body.get("errors"), body
    return body["errors"]


def plain(value: object, kind: str) -> object:
    """A value as GraphQL serialises it (decimals as text, times in ISO 8601 with their zone)."""
    if value is None:
        return None
    if kind == "Edm.Decimal":
        return Decimal(str(value))
    if kind == "Edm.DateTimeOffset":
        return value.astimezone(UTC) if isinstance(value, datetime) else datetime.fromisoformat(value).astimezone(UTC)
    if kind == "Edm.Date":
        return value if isinstance(value, date) else date.fromisoformat(value)
    return value


def listing_keys(rows: list[dict], test: Callable[[dict], bool]) -> set[str]:
    return {row["ListingKey"] for row in rows if test(row)}


def properties_where(api: TestClient, where: dict) -> set[str]:
    """Every listing `where` selects, paged to the end by cursor."""
    keys: list[str] = []
    after = None
    for _ in range(100):
        page = run(
            api,
            "query($where: PropertyWhere, $after: String) { properties(where: $where, first: 100, after: $after) {"
            " pageInfo { hasNextPage endCursor } nodes { ListingKey } } }",
            {"where": where, "after": after},
        )["properties"]
        keys += [node["ListingKey"] for node in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            assert len(keys) == len(set(keys))
            return set(keys)
        after = page["pageInfo"]["endCursor"]
    raise AssertionError("paging did not end within 100 pages")


@pytest.mark.parametrize("resource", sorted(entity_sets()))
def test_every_resource_by_key_returns_its_typed_fields(api: TestClient, gold: dict, resource: str) -> None:
    entity = entity_sets()[resource]
    row = gold[entity.table_name][len(gold[entity.table_name]) // 2]
    one, _ = root_field_names(entity)
    fields = list(entity.fields)
    data = run(
        api,
        f"query($k: String!) {{ {one}({key_argument(entity)}: $k) {{ {' '.join(fields)} }} }}",
        {"k": row[entity.key]},
    )
    served = data[one]
    for name, field in entity.fields.items():
        assert plain(served[name], field.type) == plain(row[name], field.type), name
    missing = run(api, f'{{ {one}({key_argument(entity)}: "no such key") {{ {entity.key} }} }}')
    assert missing == {one: None}


@pytest.mark.parametrize("resource", sorted(entity_sets()))
def test_every_resource_as_a_connection_counts_and_pages(api: TestClient, gold: dict, resource: str) -> None:
    entity = entity_sets()[resource]
    _, many = root_field_names(entity)
    query = (
        f"query($after: String) {{ {many}(first: 3, after: $after) {{ totalCount"
        f" pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}"
        f" edges {{ cursor node {{ {entity.key} }} }} }} }}"
    )
    first = run(api, query)[many]
    assert first["totalCount"] == len(gold[entity.table_name])
    keys = [edge["node"][entity.key] for edge in first["edges"]]
    assert keys == sorted(row[entity.key] for row in gold[entity.table_name])[:3]
    assert first["pageInfo"] == {
        "hasNextPage": len(gold[entity.table_name]) > 3,
        "hasPreviousPage": False,
        "startCursor": first["edges"][0]["cursor"],
        "endCursor": first["edges"][-1]["cursor"],
    }
    second = run(api, query, {"after": first["edges"][0]["cursor"]})[many]
    assert [edge["node"][entity.key] for edge in second["edges"]][:2] == keys[1:3]


def test_cursors_are_odata_skiptokens_of_the_same_order(api: TestClient) -> None:
    page = run(
        api, "{ properties(first: 5, orderBy: [{ListPrice: desc}]) { pageInfo { endCursor } nodes { ListingKey } } }"
    )
    cursor = page["properties"]["pageInfo"]["endCursor"]
    odata = api.get(
        "/odata/Property",
        params={"$select": "ListingKey", "$orderby": "ListPrice desc", "$top": "5", "$skiptoken": cursor},
    )
    assert odata.status_code == 200
    after = run(
        api,
        "query($c: String) { properties(first: 5, orderBy: [{ListPrice: desc}], after: $c) { nodes { ListingKey } } }",
        {"c": cursor},
    )
    assert [row["ListingKey"] for row in odata.json()["value"]] == [
        n["ListingKey"] for n in after["properties"]["nodes"]
    ]
    errors = errors_of(
        api,
        "query($c: String) { properties(orderBy: [{City: asc}], after: $c) { nodes { ListingKey } } }",
        {"c": cursor},
    )
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT" and "cursor" in errors[0]["message"]


WHERE_CASES: list[tuple[str, dict, Callable[[dict], bool]]] = [
    ("_eq", {"City": {"_eq": "Paphos"}}, lambda r: r["City"] == "Paphos"),
    ("_neq", {"City": {"_neq": "Paphos"}}, lambda r: r["City"] != "Paphos"),
    ("_gt", {"ListPrice": {"_gt": "300000"}}, lambda r: r["ListPrice"] is not None and r["ListPrice"] > 300000),
    ("_gte", {"BedroomsTotal": {"_gte": 3}}, lambda r: r["BedroomsTotal"] is not None and r["BedroomsTotal"] >= 3),
    ("_lt", {"ListPrice": {"_lt": "250000.5"}},
     lambda r: r["ListPrice"] is not None and r["ListPrice"] < Decimal("250000.5")),
    ("_lte", {"BedroomsTotal": {"_lte": 2}}, lambda r: r["BedroomsTotal"] is not None and r["BedroomsTotal"] <= 2),
    ("_in", {"StandardStatus": {"_in": ["Active", "Pending"]}}, lambda r: r["StandardStatus"] in ("Active", "Pending")),
    ("_nin", {"StandardStatus": {"_nin": ["Active"]}}, lambda r: r["StandardStatus"] != "Active"),
    ("_is_null true", {"BedroomsTotal": {"_is_null": True}}, lambda r: r["BedroomsTotal"] is None),
    ("_is_null false", {"BedroomsTotal": {"_is_null": False}}, lambda r: r["BedroomsTotal"] is not None),
    ("_like", {"City": {"_like": "L%"}}, lambda r: (r["City"] or "").startswith("L")),
    ("_ilike", {"City": {"_ilike": "%A%"}}, lambda r: "a" in (r["City"] or "").lower()),
    ("_like one character", {"ListingId": {"_like": "1_"}},
     lambda r: len(r["ListingId"]) == 2 and r["ListingId"][0] == "1"),
    ("_like escaped", {"_or": [{"ListingId": {"_like": "1\\_"}}, {"City": {"_eq": "Paphos"}}]},
     lambda r: r["ListingId"] == "1_" or r["City"] == "Paphos"),
    ("_contains_any", {"Appliances": {"_contains_any": ["Dishwasher", "Dryer"]}},
     lambda r: bool({"Dishwasher", "Dryer"} & set(r["Appliances"] or []))),
    ("_contains_all", {"Appliances": {"_contains_all": ["Dishwasher", "Dryer"]}},
     lambda r: {"Dishwasher", "Dryer"} <= set(r["Appliances"] or [])),
    ("_is_empty", {"Appliances": {"_is_empty": True}}, lambda r: not r["Appliances"]),
    ("date", {"ListingContractDate": {"_gte": "2024-01-01"}},
     lambda r: r["ListingContractDate"] is not None and r["ListingContractDate"] >= date(2024, 1, 1)),
    ("timestamp", {"ModificationTimestamp": {"_lt": "2025-01-01T00:00:00+02:00"}},
     lambda r: r["ModificationTimestamp"] < datetime.fromisoformat("2025-01-01T00:00:00+02:00")),
    ("boolean", {"NewConstructionYN": {"_eq": True}}, lambda r: r["NewConstructionYN"] is True),
    ("_and", {"_and": [{"BedroomsTotal": {"_gte": 2}}, {"BedroomsTotal": {"_lte": 3}}]},
     lambda r: r["BedroomsTotal"] is not None and 2 <= r["BedroomsTotal"] <= 3),
    ("_or", {"_or": [{"City": {"_eq": "Paphos"}}, {"BedroomsTotal": {"_gt": 4}}]},
     lambda r: r["City"] == "Paphos" or (r["BedroomsTotal"] or 0) > 4),
    ("_not", {"_not": {"City": {"_eq": "Paphos"}}}, lambda r: r["City"] != "Paphos"),
    ("empty _or", {"_or": []}, lambda r: False),
    ("two fields", {"City": {"_eq": "Limassol"}, "ListPrice": {"_gte": "200000", "_lte": "600000"}},
     lambda r: r["City"] == "Limassol" and r["ListPrice"] is not None and 200000 <= r["ListPrice"] <= 600000),
]  # fmt: skip


@pytest.mark.parametrize(("where", "test"), [case[1:] for case in WHERE_CASES], ids=[case[0] for case in WHERE_CASES])
def test_every_where_operator_selects_what_python_does(api: TestClient, gold: dict, where: dict, test) -> None:
    expected = listing_keys(gold["property"], test)
    if where != {"_or": []}:
        assert 0 < len(expected) < len(gold["property"]), "the case does not tell a right answer from a wrong one"
    assert properties_where(api, where) == expected


def test_where_on_related_records(api: TestClient, gold: dict) -> None:
    members = {m["MemberKey"]: m for m in gold["member"]}
    agent = members[gold["property"][0]["ListAgentKey"]]
    expected = listing_keys(
        gold["property"], lambda p: members.get(p["ListAgentKey"], {}).get("MemberLastName") == agent["MemberLastName"]
    )
    assert 0 < len(expected) < len(gold["property"])
    assert properties_where(api, {"listAgent": {"MemberLastName": {"_eq": agent["MemberLastName"]}}}) == expected
    office = {"office": {"OfficeKey": {"_eq": agent["OfficeKey"]}}}
    assert (
        properties_where(api, {"listAgent": {"MemberLastName": {"_eq": agent["MemberLastName"]}, **office}}) == expected
    )
    documents = {m["ResourceRecordKey"] for m in gold["media"] if m["MediaCategory"] == "Document"}
    assert properties_where(api, {"media": {"MediaCategory": {"_eq": "Document"}}}) == documents


def test_nested_fields_take_their_own_arguments(api: TestClient, gold: dict) -> None:
    listing = gold["property"][3]
    media = sorted(
        (m for m in gold["media"] if m["ResourceRecordKey"] == listing["ListingKey"]),
        key=lambda m: (-m["Order"], m["MediaKey"]),
    )
    photos = [m for m in media if m["MediaCategory"] == "Photo"]
    data = run(
        api,
        """query($k: String!) { property(listingKey: $k) {
             ListingKey
             photos: media(where: {MediaCategory: {_eq: "Photo"}}, orderBy: [{Order: desc}], first: 2) {
               MediaKey Order
             }
             all: media { MediaKey }
             listAgent { MemberKey office { OfficeKey } }
             listOffice { OfficeKey }
             showingAppointments(first: 1) { ShowingAppointmentKey }
           } }""",
        {"k": listing["ListingKey"]},
    )["property"]
    assert [m["MediaKey"] for m in data["photos"]] == [m["MediaKey"] for m in photos[:2]]
    assert sorted(m["MediaKey"] for m in data["all"]) == sorted(m["MediaKey"] for m in media)
    assert data["listAgent"]["MemberKey"] == listing["ListAgentKey"]
    assert data["listOffice"] == ({"OfficeKey": listing["ListOfficeKey"]} if listing["ListOfficeKey"] else None)
    assert len(data["showingAppointments"]) <= 1


@pytest.mark.parametrize(
    ("query", "limit"),
    [
        ("{ properties(first: 1001) { nodes { ListingKey } } }", "first"),
        ("{ properties(first: 1000) { nodes { media(first: 1000) { MediaKey } } } }", "cost"),
        (
            "{ a: properties(first: 1000) { nodes { media(first: 100) { MediaKey } } }"
            "  b: properties(first: 1000) { nodes { media(first: 100) { MediaKey } } } }",
            "cost",
        ),
        ("{ members { nodes { office { OfficeKey } } } }", None),
        ("{ properties { nodes { listAgent { office { OfficeKey } } } } }", None),
        ('{ mediaItem(mediaKey: "x") { MediaKey } properties { nodes { listAgent { office { OfficeKey } } } } }', None),
    ],
)
def test_limits_are_errors_naming_them(api: TestClient, query: str, limit: str | None) -> None:
    if limit is None:
        run(api, query)
        return
    (error,) = errors_of(api, query)
    assert error["extensions"] == {"code": "LIMIT_EXCEEDED", "limit": limit}
    assert limit != "cost" or "at most 200,000 in one request" in error["message"]
    assert "Traceback" not in error["message"]


def test_depth_and_size_limits(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    deep = "{ contacts { edges { node { ownerMember { office { OfficeKey } } } } } }"
    assert run(api, deep)
    monkeypatch.setattr("graphql_odata.graphql.execute.MAX_DEPTH", 4)
    (error,) = errors_of(api, deep)
    assert error["extensions"] == {"code": "LIMIT_EXCEEDED", "limit": "depth"}
    monkeypatch.setattr("graphql_odata.graphql.resolve.MAX_NESTING", 1)
    (error,) = errors_of(api, "{ contacts { nodes { ownerMember { office { OfficeKey } } } } }")
    assert error["extensions"] == {"code": "LIMIT_EXCEEDED", "limit": "depth"} and "nest at most 1" in error["message"]
    response = api.post("/graphql", json={"query": "{ properties { nodes { ListingKey } } }" + " " * 20_000})
    assert response.status_code == 400 and response.json()["errors"][0]["extensions"]["limit"] == "size"
    too_many = "{ " + " ".join(f'a{i}: property(listingKey: "k") {{ ListingKey }}' for i in range(800)) + " }"
    response = api.post("/graphql", json={"query": too_many})
    assert response.status_code == 400 and response.json()["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"


def test_errors_have_graphql_shape_and_a_code(api: TestClient) -> None:
    (unknown,) = errors_of(api, "{ properties { nodes { NoSuchField } } }")
    assert unknown["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED" and "NoSuchField" in unknown["message"]
    (syntax,) = errors_of(api, "{ properties { ")
    assert syntax["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    (typed,) = errors_of(api, '{ properties(where: {ListPrice: {_gt: "cheap"}}) { nodes { ListingKey } } }')
    assert typed["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    (zone,) = errors_of(
        api, '{ properties(where: {ModificationTimestamp: {_gt: "2024-01-01T00:00:00"}}) { nodes { ListingKey } } }'
    )
    assert (
        zone["extensions"]["code"] == "BAD_USER_INPUT"
        and "zone" in zone["message"]
        and "$filter" not in zone["message"]
    )
    (order,) = errors_of(api, "{ properties(orderBy: [{City: asc, ListPrice: desc}]) { nodes { ListingKey } } }")
    assert order["extensions"]["code"] == "BAD_USER_INPUT" and "one field per item" in order["message"]
    for body in (b"not json", b"[1]", b'{"query": 5}', b'{"query": "{ __typename }", "variables": [1]}'):
        response = api.post("/graphql", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400 and response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


def test_get_and_application_graphql_requests(api: TestClient) -> None:
    response = api.get(
        "/graphql",
        params={"query": "query($n: Int) { properties(first: $n) { nodes { ListingKey } } }", "variables": '{"n": 2}'},
    )
    assert response.status_code == 200 and len(response.json()["data"]["properties"]["nodes"]) == 2
    response = api.post(
        "/graphql", content="{ offices { totalCount } }", headers={"Content-Type": "application/graphql"}
    )
    assert response.status_code == 200 and response.json()["data"]["offices"]["totalCount"] >= 1


def test_access_needs_a_token_as_odata_does(published_gold: PublishedGold, api: TestClient) -> None:
    anonymous = TestClient(api.app)
    response = anonymous.post("/graphql", json={"query": "{ properties { totalCount } }"})
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    forged = anonymous.post("/graphql", json={"query": "{ __typename }"}, headers={"Authorization": "Bearer forged"})
    assert forged.status_code == 401


def test_introspection_describes_fields_from_the_data_dictionary(api: TestClient) -> None:
    data = run(api, '{ __type(name: "Property") { fields { name description type { name kind ofType { name } } } } }')
    fields = {f["name"]: f for f in data["__type"]["fields"]}
    assert fields["ListPrice"]["type"]["name"] == "Decimal"
    assert fields["ModificationTimestamp"]["type"]["name"] == "DateTime"
    assert fields["ListingContractDate"]["type"]["name"] == "Date"
    assert fields["Appliances"]["type"]["kind"] == "LIST"
    assert fields["ListingKey"]["type"]["kind"] == "NON_NULL"
    assert "price" in fields["ListPrice"]["description"].lower()
    assert "StandardStatus" in fields["StandardStatus"]["description"]
    assert {"media", "listAgent", "coListAgent", "listOffice", "showingAppointments"} <= set(fields)


def test_graphiql_page_and_its_assets_come_from_this_server(api: TestClient, tmp_path, monkeypatch) -> None:
    from graphql_odata.graphql import graphiql

    for name in graphiql.ASSET_TYPES:
        (tmp_path / name).write_text(f"/* {name} */")
    monkeypatch.setattr(graphiql, "ASSETS", tmp_path)
    page = api.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    linked = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(linked) == 4 and all(url.startswith("http://testserver/graphql/assets/") for url in linked)
    assert '"url":"http://testserver/graphql"' in page.text and "Bearer <access token" in page.text
    script = api.get("/graphql/assets/graphiql.min.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert script.text == "/* graphiql.min.js */"
    assert api.get("/graphql/assets/..%2Fresolve.py").status_code == 404
    assert api.get("/graphql/assets/other.js").status_code == 404
    assert api.get("/graphql", headers={"Accept": "application/json"}).status_code == 400


class CountingBackend:
    """The snapshot backend, counting the queries it runs; with `documents=False`, reading rows only,
    as the Databricks backend does."""

    def __init__(self, backend: object, *, documents: bool = True) -> None:
        self.backend, self.queries, self.documents = backend, [], documents

    def stores_documents(self, entity: object) -> bool:
        return self.documents and self.backend.stores_documents(entity)

    def documents_by_key(self, entity: object) -> object:
        return self.backend.documents_by_key(entity) if self.documents else None

    def document_runs(self, entity: object, column: str) -> object:
        return self.backend.document_runs(entity, column) if self.documents else None

    def query(self, sql: str, parameters: dict | None = None, documents: str | None = None):
        self.queries.append(sql)
        return self.backend.query(sql, parameters, documents=documents)

    def __getattr__(self, name: str) -> object:
        return getattr(self.backend, name)


@pytest.mark.parametrize("documents", [True, False], ids=["documents", "rows"])
def test_related_records_cost_one_query_per_navigation_whatever_the_page_size(
    published_gold: PublishedGold, documents: bool
) -> None:
    from graphql_odata.backends.snapshot import SnapshotBackend

    counting = CountingBackend(SnapshotBackend(published_gold.settings.paths.snapshot_pointer), documents=documents)
    query = """query($n: Int) { properties(first: $n) { nodes {
        ListingKey media { MediaKey } listAgent { MemberKey office { OfficeKey } } listOffice { OfficeName } } } }"""
    counts = {}
    with authorized_api(published_gold.settings, counting) as api:
        for size in (5, 100):
            counting.queries.clear()
            nodes = run(api, query, {"n": size})["properties"]["nodes"]
            assert len(nodes) == size and sum(len(node["media"]) for node in nodes) > size
            counts[size] = len(counting.queries)
    if documents:
        # one each for the page (its keys and where their documents lie), list agents, their offices
        # and list offices; media come as each listing's run of stored documents, found in its index
        assert counts == {5: 4, 100: 4}
    else:
        # the page's keys, its rows, then media, list agents, their offices and list offices
        assert counts == {5: 6, 100: 6}


def test_answers_keep_the_order_aliases_and_typenames_of_the_selection(api: TestClient) -> None:
    fields = list(entity_sets()["Property"].fields)
    reordered = [*reversed(fields[:5]), *fields[5:]]
    query = (
        "{ properties(first: 3) { __typename edges { __typename node { "
        + " ".join(reordered)
        + " price: ListPrice __typename media { __typename MediaKey } } } } }"
    )
    connection = run(api, query)["properties"]
    assert connection["__typename"] == "PropertyConnection"
    for edge in connection["edges"]:
        assert list(edge) == ["__typename", "node"] and edge["__typename"] == "PropertyEdge"
        node = edge["node"]
        assert list(node) == [*reordered, "price", "__typename", "media"]
        assert node["price"] == node["ListPrice"] and node["__typename"] == "Property"
        assert all(list(media) == ["__typename", "MediaKey"] for media in node["media"])
    whole = run(api, "{ properties(first: 2) { nodes { " + " ".join(fields) + " } } }")["properties"]["nodes"]
    assert all(list(node) == fields for node in whole)


def test_variables_inside_a_selection_are_read_each_time_the_query_is_sent(api: TestClient, gold: dict) -> None:
    """Plans are kept per query text; those that read variables below the root field are kept per value."""
    query = """query($k: String!, $n: Int, $agent: Boolean!) { property(listingKey: $k) {
        ListingKey media(first: $n) { MediaKey } listAgent @include(if: $agent) { MemberKey } } }"""
    listing = gold["property"][5]["ListingKey"]
    media = sum(m["ResourceRecordKey"] == listing for m in gold["media"])
    assert media > 2
    for n, agent in [(1, True), (2, False), (None, True), (1, False)]:
        found = run(api, query, {"k": listing, "n": n, "agent": agent})["property"]
        assert len(found["media"]) == (media if n is None else n)
        assert ("listAgent" in found) is agent
    other = gold["property"][6]["ListingKey"]
    assert run(api, query, {"k": other, "n": 1, "agent": True})["property"]["ListingKey"] == other
    nested_where = """query($category: String) { properties(first: 3) { nodes {
        media(where: {MediaCategory: {_eq: $category}}) { MediaCategory } } } }"""
    for category in ("Photo", "Document"):
        nodes = run(api, nested_where, {"category": category})["properties"]["nodes"]
        categories = {m["MediaCategory"] for node in nodes for m in node["media"]}
        assert categories <= {category} and (categories or category == "Document")


def test_root_fields_merged_under_include_are_planned_for_the_nodes_in_play(api: TestClient, gold: dict) -> None:
    key = gold["property"][0]["ListingKey"]
    query = """query($a: Boolean!, $k: String!) {
      p: property(listingKey: $k) @include(if: $a) { ListingKey ListPrice }
      p: property(listingKey: $k) { ListingKey }
      ...on Query @include(if: $a) { c: properties(first: 1) { totalCount } }
      c: properties(first: 1) { nodes { ListingKey } }
    }"""
    for included in (False, True, False):
        data = run(api, query, {"a": included, "k": key})
        assert ("ListPrice" in data["p"]) is included and ("totalCount" in data["c"]) is included
        assert data["p"]["ListingKey"] == key and len(data["c"]["nodes"]) == 1


def test_navigation_aliases_never_collide_with_the_rows_own_columns(api: TestClient, gold: dict) -> None:
    listing = gold["property"][0]
    query = """query($k: String!) { property(listingKey: $k) {
        ListingKey __document: listAgent { MemberKey } __parent: media(first: 1) { MediaKey } } }"""
    found = run(api, query, {"k": listing["ListingKey"]})["property"]
    assert found["__document"] == {"MemberKey": listing["ListAgentKey"]} and len(found["__parent"]) == 1
    nodes = run(api, "{ properties(first: 3) { nodes { ListingKey __row: media { MediaKey } } } }")
    assert all(isinstance(node["__row"], list) for node in nodes["properties"]["nodes"])


def test_work_a_request_may_ask_for_is_bounded(api: TestClient) -> None:
    many = "{ " + " ".join(f"a{i}: properties(first: 0) {{ totalCount }}" for i in range(25)) + " }"
    (error,) = errors_of(api, many)
    assert error["extensions"] == {"code": "LIMIT_EXCEEDED", "limit": "root fields"}
    wide = {"City": {"_in": [f"city {i}" for i in range(500)]}}
    (error,) = errors_of(api, "query($w: PropertyWhere) { properties(where: $w) { totalCount } }", {"w": wide})
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and "too complex" in error["message"]
    (error,) = errors_of(api, r'{ properties(where: {City: {_like: "Pa\\"}}) { totalCount } }')
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and "lone backslash" in error["message"]
    huge = 2**70
    query = (
        'query($n: BigInt) { mediaItem(mediaKey: "x") { MediaKey } properties(first: 1) { nodes {'
        " media(where: {X_FileSize: {_eq: $n}}) { MediaKey } } } }"
    )
    response = api.post("/graphql", json={"query": query, "variables": {"n": huge}})
    assert response.status_code == 200 and "INTERNAL_SERVER_ERROR" not in response.text


def test_bodies_are_refused_unread_without_a_token_and_cut_at_the_limit(api: TestClient) -> None:
    anonymous = TestClient(api.app)
    assert anonymous.post("/graphql", content=b"x" * 2_000_000).status_code == 401

    def chunks():
        for _ in range(40):
            yield b" " * 20_000

    response = api.post("/graphql", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


def test_a_field_added_to_a_mapping_file_is_in_the_schema_with_no_code(tmp_path, monkeypatch) -> None:
    import shutil

    from conf import mappings
    from graphql_odata import schema
    from graphql_odata.graphql import types

    copied = tmp_path / "mappings"
    shutil.copytree(mappings.MAPPINGS_DIR, copied)
    member = copied / "member.yaml"
    member.write_text(member.read_text() + '  - {name: X_YearsLicensed, type: Edm.Int32, expression: "7"}\n')
    monkeypatch.setattr(mappings, "MAPPINGS_DIR", copied)
    caches = (mappings.resource_mappings, schema.entity_sets)
    for cached in caches:
        cached.cache_clear()
    try:
        built = types.graphql_schema.__wrapped__().graphql_schema
    finally:
        monkeypatch.undo()
        for cached in caches:
            cached.cache_clear()
    assert built.type_map["Member"].fields["X_YearsLicensed"].type.name == "Int"
    assert built.type_map["MemberWhere"].fields["X_YearsLicensed"].type.name == "IntComparison"
    assert "X_YearsLicensed" in built.type_map["MemberOrderBy"].fields
    assert "X_YearsLicensed" not in types.graphql_schema().graphql_schema.type_map["Member"].fields
