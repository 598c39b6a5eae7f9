"""The API on the Databricks backend: the SQL and parameters it sends, run on a local Spark session.

A DB-API connection over `pyspark` stands in for the SQL warehouse: it receives exactly what
`databricks-sql-connector` would (Databricks SQL text with `:p0` markers, and the values beside
it) and runs it with `spark.sql(text, args=values)` over the same gold rows as the snapshot.
Every response must equal the embedded backend's (the snapshot serves stored documents, the
warehouse serialised rows: the same JSON values).
"""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pyspark.sql import SparkSession

from benchmarks.spark_baseline import local_spark_session
from graphql_odata.backends.databricks import DatabricksBackend
from pipelines.snapshot import open_snapshot, read_pointer
from tests.bounded import next_links
from tests.conftest import PublishedGold, authorized_api

pytestmark = pytest.mark.slow


class SparkCursor:
    def __init__(self, spark: SparkSession, sent: list) -> None:
        self.spark, self.sent = spark, sent
        self.description, self._rows = None, []

    def execute(self, sql: str, parameters: dict) -> None:
        self.sent.append((sql, dict(parameters)))
        frame = self.spark.sql(sql, args=parameters)
        self.description = [(field.name,) for field in frame.schema.fields]
        self._rows = frame.collect()

    def fetchall(self) -> list[tuple]:
        return [tuple(row) for row in self._rows]

    def close(self) -> None:
        self._rows = []


class SparkConnection:
    """What the warehouse connection offers the backend: cursors that execute with named parameters."""

    def __init__(self, spark: SparkSession, sent: list) -> None:
        self.spark, self.sent = spark, sent

    def cursor(self) -> SparkCursor:
        return SparkCursor(self.spark, self.sent)


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    session = local_spark_session("mls2-odata-parity", warehouse, partitions=2)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def sent() -> list:
    return []


@pytest.fixture(scope="module")
def apis(published_gold: PublishedGold, spark: SparkSession, sent: list) -> Iterator[tuple[TestClient, TestClient]]:
    """The same app twice: on the embedded snapshot, and on the Databricks backend over Spark."""
    paths = published_gold.settings.paths
    with open_snapshot(paths.snapshots, read_pointer(paths.snapshot_pointer)) as con:
        for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'VIEW'"
        ).fetchall():
            arrow = con.sql(f"SELECT COLUMNS(lambda c: NOT starts_with(c, '__')) FROM \"{name}\"").to_arrow_table()
            spark.createDataFrame(arrow).createOrReplaceGlobalTempView(name)
    backend = DatabricksBackend(lambda: SparkConnection(spark, sent), schema="global_temp")
    with (
        authorized_api(published_gold.settings) as embedded,
        authorized_api(published_gold.settings, backend) as remote,
    ):
        yield embedded, remote


QUERIES = [
    "Property?$top=7",
    "Property?$select=ListingKey,ListPrice,City&$filter=ListPrice gt 250000 and City ne 'Limassol'"
    "&$orderby=ListPrice desc",
    "Property?$select=ListingKey,BedroomsTotal&$filter=not (BedroomsTotal le 2) or BedroomsTotal eq null&$top=30",
    "Property?$select=ListingKey,Appliances"
    "&$filter=Appliances/any(a: a eq 'Dishwasher') and Appliances/all(a: a ne 'Dryer')",
    "Property?$select=ListingKey,City"
    "&$filter=contains(tolower(City),'li') or startswith(City,'P') or endswith(City,'a')",
    "Property?$select=ListingKey,ModificationTimestamp"
    "&$filter=ModificationTimestamp lt now() and year(ModificationTimestamp) ge 2024"
    " and hour(ModificationTimestamp) lt 12",
    "Property?$select=ListingKey,ListingContractDate"
    "&$filter=ListingContractDate ge 2024-01-01 and month(ListingContractDate) in (1, 3, 5)",
    "Property?$select=ListingKey,ListPrice"
    "&$filter=ListPrice mul 2 div 4 gt 100000.5 and BedroomsTotal mod 2 eq 0&$orderby=ListPrice",
    # Division of decimals and doubles is true division on Spark too (its DIV truncates to an integer)
    "Property?$select=ListingKey,ListPrice&$filter=ListPrice div 100000000 gt 0",
    "Property?$select=ListingKey,X_DistanceFromBeach&$filter=X_DistanceFromBeach div 1000000 gt 0",
    # Filters on related records: semi-joins over the other gold tables
    "Property?$select=ListingKey&$filter=Media/any(m: m/MediaCategory eq 'Document') and Media/all(m: m/Order lt 7000)",
    "Property?$select=ListingKey&$filter=ListAgent/any(a: a/Office/any(o: o/OfficeName ne 'No such office'))",
    # A list of nothing but null: Spark refuses `IN ()`
    "Property?$select=ListingKey,City&$filter=City in (null) or ListPrice gt 0",
    "Property?$select=ListingKey,ModificationTimestamp"
    "&$filter=ModificationTimestamp gt 2024-03-01T10:00:00%2B02:00&$count=true&$top=3",
    "Property?$select=ListingKey,StandardStatus&$filter=StandardStatus in ('Active','Pending')"
    "&$orderby=StandardStatus desc,ListingKey&$skip=4&$top=9",
    "Property?$select=ListingKey&$top=12&$expand=ListAgent($select=MemberFullName;$expand=Office($select=OfficeName)),"
    "Media($select=MediaKey,Order;$orderby=Order desc;$top=2;$filter=MediaCategory eq 'Photo')",
    "Member?$expand=Office",
    "Property?$top=15&$expand=Media,ShowingAppointments",
    "Lookup?$filter=LookupName eq 'StandardStatus'&$orderby=LookupValue",
    "Property/$count?$filter=City eq 'Paphos'",
    "Media?$select=MediaKey,ResourceRecordKey&$orderby=ResourceRecordKey desc,Order&$top=25",
]


@pytest.mark.parametrize("url", QUERIES)
def test_databricks_backend_answers_like_the_snapshot(apis: tuple[TestClient, TestClient], url: str) -> None:
    embedded, remote = apis
    expected, answered = embedded.get(f"/odata/{url}"), remote.get(f"/odata/{url}")
    assert expected.status_code == answered.status_code == 200, answered.text
    assert answered.json() == expected.json()
    if url.startswith("Property?") and "$top" not in url:
        assert expected.json()["value"]


def test_paging_by_next_link_matches_on_both_backends(apis: tuple[TestClient, TestClient]) -> None:
    embedded, remote = apis
    headers = {"Prefer": "odata.maxpagesize=40"}
    pages = []
    for api in (embedded, remote):
        url, keys = "/odata/Property?$select=ListingKey,BedroomsTotal&$orderby=BedroomsTotal desc", []
        for body in next_links(lambda link, api=api: api.get(link, headers=headers).json(), url):
            keys += [r["ListingKey"] for r in body["value"]]
        pages.append(keys)
    assert pages[0] == pages[1] and len(set(pages[0])) == len(pages[0]) > 200


def test_values_travel_as_parameters_not_as_sql_text(apis: tuple[TestClient, TestClient], sent: list) -> None:
    _, remote = apis
    sent.clear()
    hostile = "x' OR '1'='1"
    quoted = hostile.replace("'", "''")
    response = remote.get("/odata/Property", params={"$filter": f"City eq '{quoted}' and ListPrice gt 12345.5"})
    assert response.status_code == 200 and response.json()["value"] == []
    [(sql, parameters)] = sent
    assert hostile not in sql and "12345.5" not in sql and ":p0" in sql and ":p1" in sql
    assert hostile in parameters.values()
    assert "global_temp.property" in sql


GRAPHQL_QUERIES = [
    """{ properties(first: 20, where: {ListPrice: {_gt: "250000"}, City: {_ilike: "%a%"}},
                    orderBy: [{ListPrice: desc}]) {
        totalCount pageInfo { hasNextPage endCursor }
        nodes { ListingKey ListPrice ModificationTimestamp ListingContractDate Appliances
                media(where: {MediaCategory: {_eq: "Photo"}}, orderBy: [{Order: asc}], first: 2) { MediaKey Order }
                listAgent { MemberFullName office { OfficeName } } } } }""",
    """{ properties(first: 30, where: {_or: [{Appliances: {_contains_all: ["Dishwasher"]}},
                                            {media: {MediaCategory: {_eq: "Document"}}}]}) {
        edges { cursor node { ListingKey BedroomsTotal } } } }""",
    """{ members(first: 5) { nodes { MemberKey MemberLanguages office { OfficeKey } } } }""",
]


@pytest.mark.parametrize("query", GRAPHQL_QUERIES)
def test_graphql_answers_alike_on_both_backends(apis: tuple[TestClient, TestClient], query: str) -> None:
    embedded, remote = apis
    expected, answered = (api.post("/graphql", json={"query": query}) for api in (embedded, remote))
    assert expected.status_code == answered.status_code == 200
    assert "errors" not in expected.json(), expected.json()
    (connection,) = expected.json()["data"].values()
    assert connection.get("nodes") or connection.get("edges"), "a query that selects nothing compares nothing"
    assert answered.json() == expected.json()
