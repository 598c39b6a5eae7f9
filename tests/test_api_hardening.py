"""Bad input at the API's doors, through the real server (uvicorn on a port): each answer a 4xx in
OData's error shape with `OData-Version`, naming the problem and nothing of the engine behind it."""

import base64
from collections.abc import Iterator

import orjson
import pytest
import requests

from graphql_odata.backends.base import REJECTIONS
from graphql_odata.odata.filter import MAX_FILTER_DEPTH
from graphql_odata.odata.paging import MAX_PAGE_SIZE
from graphql_odata.request_limits import MAX_URL_BYTES
from graphql_odata.security import clients
from graphql_odata.security.clients import ClientRegistry
from tests.bounded import next_links
from tests.conftest import PublishedGold, live_api, live_token

ENGINE_WORDS = ("duckdb", "error_on_division_by_zero", "set ", "binder", "catalog", "traceback", "spark")


class Api:
    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, params: dict | list | None = None, **kwargs: object) -> requests.Response:
        return self.session.get(self.base + path, params=params, timeout=30, **kwargs)


@pytest.fixture(scope="module")
def api(published_gold: PublishedGold) -> Iterator[Api]:
    with live_api(published_gold.settings) as base:
        yield Api(base, live_token(published_gold.settings, base))


def assert_odata_error(response: requests.Response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text[:300]
    assert response.headers.get("OData-Version") == "4.01"
    message = response.json()["error"]["message"]
    for word in words:
        assert word in message, message
    assert not any(engine in message.lower() for engine in ENGINE_WORDS), message
    return message


@pytest.mark.parametrize(
    ("params", "option"),
    [
        ({"$top": "9" * 5000}, "$top"),
        ({"$skip": "9" * 5000}, "$skip"),
        ({"$top": "\u0663"}, "$top"),
        ({"$skip": "\uff11"}, "$skip"),
    ],
    ids=["top 5000 digits", "skip 5000 digits", "top arabic-indic digit", "skip fullwidth digit"],
)
def test_page_options_out_of_range_or_not_ascii_digits_are_400s(api: Api, params: dict, option: str) -> None:
    message = assert_odata_error(api.get("/odata/Property", params), 400, option)
    assert len(message) < 300


def test_a_huge_max_page_size_preference_is_the_server_maximum(api: Api) -> None:
    response = api.get("/odata/Property", headers={"Prefer": "odata.maxpagesize=" + "9" * 5000})
    assert response.status_code == 200
    assert response.headers["Preference-Applied"] == f"odata.maxpagesize={MAX_PAGE_SIZE}"
    assert 0 < len(response.json()["value"]) <= MAX_PAGE_SIZE


def test_functions_nested_deeper_than_the_limit_are_a_400(api: Api) -> None:
    for depth in (200, 300):
        deep = "tolower(" * depth + "City" + ")" * depth + " eq 'a'"
        assert_odata_error(api.get("/odata/Property", {"$filter": deep}), 400, "$filter")
    deep = "tolower(" * 120 + "City" + ")" * 120 + " eq 'a'"
    assert_odata_error(api.get("/odata/Property", {"$filter": deep}), 400, f"more than {MAX_FILTER_DEPTH} levels")
    shallow = "tolower(" * 20 + "City" + ")" * 20 + " eq 'a'"
    assert api.get("/odata/Property", {"$filter": shallow, "$top": "1"}).status_code == 200


def forged_token(values: list) -> str:
    payload = {"v": values, "s": "AAAAAAAAAAAAAAAAAAAAAA"}
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def test_a_skiptoken_not_signed_by_the_server_is_a_400(api: Api) -> None:
    params = {"$orderby": "ListPrice", "$select": "ListingKey"}
    two = {"Prefer": "odata.maxpagesize=2"}
    link = api.get("/odata/Property", params, headers=two).json()["@odata.nextLink"]
    genuine = link.split("$skiptoken=", 1)[1].split("&", 1)[0]
    assert api.get(link.replace(api.base, ""), headers=two).status_code == 200
    payload = orjson.loads(base64.urlsafe_b64decode(genuine + "=" * (-len(genuine) % 4)))
    for values in ([payload["v"][0], 12345], payload["v"], [None, "QOBRIX_x"]):
        response = api.get("/odata/Property", {**params, "$skiptoken": forged_token(values)})
        assert_odata_error(response, 400, "not one this service issued")
    tampered = {**payload, "v": [payload["v"][0], "QOBRIX_zzz"]}
    token = base64.urlsafe_b64encode(orjson.dumps(tampered)).decode().rstrip("=")
    assert_odata_error(api.get("/odata/Property", {**params, "$skiptoken": token}), 400, "not one this service issued")


@pytest.mark.parametrize(
    "condition",
    ["BedroomsTotal mod 0 eq 1", "BedroomsTotal div 0 eq 1", "ListPrice div 0 gt 1", "ListPrice mod 0.0 eq 1"],
)
def test_a_division_by_a_written_zero_is_a_400(api: Api, condition: str) -> None:
    assert_odata_error(api.get("/odata/Property", {"$filter": condition}), 400, "divides by zero")


def test_a_division_by_a_field_that_is_zero_leaves_the_row_out(api: Api, published_gold: PublishedGold) -> None:
    rows = published_gold.rows("property")
    assert any(r["BathroomsHalf"] == 0 for r in rows), "the sandbox has listings with no half bathrooms"
    condition = "PhotosCount mod BathroomsHalf ge 0 or PhotosCount div BathroomsHalf ge 0"
    url = requests.Request("GET", api.base + "/odata/Property", params={"$filter": condition}).prepare().url
    pages = next_links(lambda link: api.session.get(link, timeout=30).json(), url)
    served = {row["ListingKey"] for page in pages for row in page["value"]}
    assert served == {r["ListingKey"] for r in rows if r["BathroomsHalf"] not in (None, 0)}


def test_an_arithmetic_overflow_is_a_400_in_the_services_words(api: Api) -> None:
    response = api.get("/odata/Property", {"$filter": "BedroomsTotal mul 9223372036854775807 gt 1"})
    assert_odata_error(response, 400, REJECTIONS["overflow"])


def test_the_frameworks_own_answers_are_in_odata_shape(api: Api) -> None:
    assert_odata_error(requests.post(api.base + "/odata/Property", timeout=30), 405)
    assert_odata_error(requests.delete(api.base + "/odata", timeout=30), 405)
    assert_odata_error(api.get("//Property"), 404, "no such path")
    long = api.get("/odata/Property", {"$filter": "City eq '" + "a" * (40 * 1024) + "'"})
    assert_odata_error(long, 414, f"at most {MAX_URL_BYTES:,}")
    longer = api.get("/odata/Property", {"$filter": "City eq '" + "a" * (200 * 1024) + "'"})
    assert_odata_error(longer, 400, "could not be read", f"up to {MAX_URL_BYTES:,} bytes")


@pytest.mark.parametrize(
    "params",
    [
        [("$top", "1"), ("$top", "2")],
        [("$filter", "BedroomsTotal eq 1"), ("$filter", "BedroomsTotal eq 2")],
        [("$expand", "Media($top=1;$top=2)")],
    ],
    ids=["top twice", "filter twice", "nested top twice"],
)
def test_a_system_query_option_given_twice_is_a_400(api: Api, params: list) -> None:
    assert_odata_error(api.get("/odata/Property", params), 400, "twice")


def token_of(base: str, client_id: str, secret: str) -> requests.Response:
    grant = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return requests.post(f"{base}/oauth/token", data=grant, timeout=30)


def test_tokens_issued_before_a_secret_changed_are_refused(published_gold: PublishedGold) -> None:
    registry = ClientRegistry(published_gold.settings.paths.api_clients)
    with live_api(published_gold.settings) as base:
        first = registry.add("rotating", replace=True)
        old = token_of(base, "rotating", first).json()["access_token"]
        read = {"Authorization": f"Bearer {old}"}
        assert requests.get(f"{base}/odata", headers=read, timeout=30).status_code == 200
        second = registry.add("rotating", replace=True)
        assert_odata_error(requests.get(f"{base}/odata", headers=read, timeout=30), 401, "previous secret")
        newer = token_of(base, "rotating", second).json()["access_token"]
        registry.remove("rotating")
        registry.add("rotating")
        for token in (old, newer):
            response = requests.get(f"{base}/odata", headers={"Authorization": f"Bearer {token}"}, timeout=30)
            assert_odata_error(response, 401, "previous secret")
        registry.remove("rotating")


def test_token_attempts_are_limited_per_client_and_the_limit_holds_the_right_secret_back_too(
    published_gold: PublishedGold,
) -> None:
    settings = published_gold.settings.model_copy(update={"mls2_api_token_attempts_per_minute": 3})
    secret = ClientRegistry(settings.paths.api_clients).add("guessed", replace=True)
    with live_api(settings) as base:
        answers = [token_of(base, "guessed", "wrong").status_code for _ in range(3)]
        blocked = token_of(base, "guessed", secret)
        assert answers == [401, 401, 401]
        assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
        assert blocked.json()["error"] == "slow_down"
        assert token_of(base, "another", "x").status_code == 401
    ClientRegistry(settings.paths.api_clients).remove("guessed")


def test_token_attempts_are_limited_per_address_across_client_ids(published_gold: PublishedGold) -> None:
    settings = published_gold.settings.model_copy(update={"mls2_api_token_attempts_per_minute": 2})
    with live_api(settings) as base:
        answers = [token_of(base, f"probe-{n}", "x").status_code for n in range(7)]
    assert answers == [401] * 6 + [429]


def test_an_unknown_client_is_hashed_like_a_wrong_secret(published_gold: PublishedGold, monkeypatch) -> None:
    hashed: list[bytes] = []
    real = clients._hash
    monkeypatch.setattr(clients, "_hash", lambda secret, salt, *rest: hashed.append(salt) or real(secret, salt, *rest))
    registry = ClientRegistry(published_gold.settings.paths.api_clients)
    assert registry.verify("nobody-at-all", "guess") is None
    assert hashed == [clients.UNKNOWN_CLIENT_SALT]


def test_secrets_are_checked_off_the_event_loop(published_gold: PublishedGold, monkeypatch) -> None:
    import asyncio

    seen: list[bool] = []
    real = ClientRegistry.verify

    def verify(self: ClientRegistry, client_id: str, secret: str):
        try:
            asyncio.get_running_loop()
            seen.append(True)
        except RuntimeError:
            seen.append(False)
        return real(self, client_id, secret)

    monkeypatch.setattr(ClientRegistry, "verify", verify)
    with live_api(published_gold.settings) as base:
        assert token_of(base, "nobody", "x").status_code == 401
    assert seen == [False]


@pytest.mark.parametrize("chunked", [False, True], ids=["with length", "chunked"])
def test_a_token_request_body_over_the_cap_is_refused_unread(published_gold: PublishedGold, chunked: bool) -> None:
    body = b"grant_type=client_credentials&client_id=a&client_secret=" + b"x" * 300_000
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    with live_api(published_gold.settings) as base:
        data = iter([body[i : i + 65536] for i in range(0, len(body), 65536)]) if chunked else body
        response = requests.post(f"{base}/oauth/token", data=data, headers=headers, timeout=30)
    assert response.status_code == 413 and "larger than 4096 bytes" in response.json()["error_description"]


def test_a_client_id_no_client_could_have_is_refused_before_it_is_counted(published_gold: PublishedGold) -> None:
    from fastapi.testclient import TestClient

    from graphql_odata.main import create_app

    app = create_app(published_gold.settings)
    with TestClient(app) as client:
        grant = {"grant_type": "client_credentials", "client_id": "x" * 100, "client_secret": "guess"}
        response = client.post("/oauth/token", data=grant)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert not any("x" * 65 in bucket for bucket in app.state.security.limiter._buckets)
