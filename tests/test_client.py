"""The Qobrix client against the sandbox's real faults: retries, patience, and clear final errors."""

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import pytest
import requests

from conf.settings import Settings
from ingestion.cli import make_client
from ingestion.client import ClientSettings, QobrixClient, RateLimiter
from ingestion.errors import MalformedResponseError, QobrixAuthError, QobrixError
from ingestion.sandbox import SANDBOX_API_KEY, SANDBOX_API_USER, SandboxServer, SandboxWorld
from ingestion.sandbox.faults import FaultConfig

FAST = ClientSettings(backoff=0.01, max_backoff=0.05, retries=6)
PARAMS = {"limit": 20, "expand": "false", "media": "false"}


def sandbox_with(**faults: object) -> SandboxServer:
    return SandboxServer(SandboxWorld(seed=3, properties=200), faults=FaultConfig(**faults))


def client_for(server: SandboxServer, settings: ClientSettings = FAST) -> QobrixClient:
    return QobrixClient(server.base_url, SANDBOX_API_USER, SANDBOX_API_KEY, settings)


@pytest.mark.parametrize("kind", ["500", "502", "503", "429", "cut", "malformed"])
def test_transient_faults_are_retried_until_the_page_arrives(kind: str) -> None:
    with sandbox_with(rate=0.5, kinds=(kind,), retry_after=0, seed=4) as server:
        client = client_for(server)
        pages = [client.list_page("properties", "properties", {**PARAMS, "page": p}) for p in range(1, 11)]
        assert [len(page.records) for page in pages] == [20] * 10
        assert client.calls > 10
        assert server.faults.seen.get(kind, 0) >= 1


def test_retry_after_is_honoured() -> None:
    with sandbox_with(rate=1.0, kinds=("429",), retry_after=1) as server:
        client = client_for(server, ClientSettings(backoff=0.01, retries=1))
        started = time.monotonic()
        with pytest.raises(QobrixError, match="HTTP 429"):
            client.list_page("properties", "properties", PARAMS)
        assert time.monotonic() - started >= 1.0


def test_a_response_held_past_the_read_timeout_is_cut_and_retried() -> None:
    """Each held response costs the read timeout, not the server's stall: without a read timeout
    the page would arrive after waiting out every stall, in one call."""
    with sandbox_with(rate=0.5, kinds=("slow",), slow_seconds=10.0, seed=2) as server:
        client = client_for(server, ClientSettings(timeout=(5.0, 0.3), backoff=0.01, retries=6))
        started = time.monotonic()
        pages = [client.list_page("properties", "properties", {**PARAMS, "page": p}) for p in range(1, 5)]
        elapsed = time.monotonic() - started
        stalls = server.faults.seen.get("slow", 0)
        assert stalls >= 1 and [len(page.records) for page in pages] == [20] * 4
        assert client.calls == 4 + stalls
        assert elapsed < 5.0, "a stall was waited out"


def test_a_server_that_always_holds_its_response_ends_in_an_error_naming_the_read_timeout() -> None:
    with sandbox_with(rate=1.0, kinds=("slow",), slow_seconds=10.0) as server:
        client = client_for(server, ClientSettings(timeout=(5.0, 0.3), backoff=0.01, retries=2))
        started = time.monotonic()
        with pytest.raises(QobrixError, match=r"page 1: gave up after 2 retries: ReadTimeout.*read timeout=0.3"):
            client.list_page("properties", "properties", PARAMS)
        assert time.monotonic() - started < 5.0 and client.calls == 3


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose listener never accepts and whose backlog is full: connecting hangs, as behind a
    firewall that drops packets."""
    listener = socket.socket()
    held = [listener]
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(4):
            filler = socket.socket()
            held.append(filler)
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        time.sleep(0.1)
        yield port
    finally:
        for sock in held:
            sock.close()


def test_a_connection_that_never_opens_ends_in_an_error_naming_the_connect_timeout(unanswered_port: int) -> None:
    settings = ClientSettings(timeout=(0.3, 2.0), backoff=0.01, retries=2)
    client = QobrixClient(f"http://127.0.0.1:{unanswered_port}/api/v2", "u", "k", settings)
    started = time.monotonic()
    with pytest.raises(QobrixError, match=r"cannot reach Qobrix after 2 retries: .*connect timeout=0.3"):
        client.list_page("properties", "properties", PARAMS)
    assert time.monotonic() - started < 5.0


def test_the_configured_timeouts_reach_the_client(settings: Settings) -> None:
    configured = settings.model_copy(update={"mls2_http_timeout_seconds": 7.5, "mls2_http_retries": 3})
    client = make_client(configured, "http://127.0.0.1:9/api/v2", "u", "k")
    assert client.settings.timeout == (5.0, 7.5) and client.settings.retries == 3


def test_errors_outlasting_the_retries_name_entity_page_and_cause() -> None:
    with sandbox_with(rate=1.0, kinds=("503",)) as server:
        client = client_for(server, ClientSettings(backoff=0.01, retries=2))
        with pytest.raises(QobrixError, match=r"entity properties, page 7: HTTP 503") as raised:
            client.list_page("properties", "properties", {**PARAMS, "page": 7})
        assert raised.value.status == 503
        assert client.calls == server.faults.seen["503"] == 3, "each request made is counted once, retries included"


def test_backoff_doubles_from_the_first_delay_up_to_the_cap_with_jitter_around_each() -> None:
    client = QobrixClient("http://127.0.0.1:9/api/v2", "u", "k", ClientSettings(backoff=1.0, max_backoff=8.0))
    for attempt, delay in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        waits = [client._backoff(attempt) for _ in range(200)]
        assert delay * 0.5 <= min(waits) and max(waits) <= delay * 1.5, (attempt, min(waits), max(waits))
        assert max(waits) - min(waits) > delay * 0.5, "the jitter spreads the waits"


def test_a_body_that_never_parses_is_kept_for_landing() -> None:
    with sandbox_with(rate=1.0, kinds=("malformed",)) as server:
        client = client_for(server, ClientSettings(backoff=0.01, retries=2))
        with pytest.raises(MalformedResponseError, match="entity properties, page 1: malformed JSON body") as raised:
            client.list_page("properties", "properties", PARAMS)
        assert raised.value.body.startswith(b'{"data":[') and client.calls == 3


def test_refused_credentials_are_not_retried(sandbox: SandboxServer) -> None:
    client = QobrixClient(sandbox.base_url, "someone", "wrong", FAST)
    with pytest.raises(QobrixAuthError, match="entity properties, page 1: Qobrix refused the credentials"):
        client.list_page("properties", "properties", PARAMS)
    assert client.calls == 1


def test_an_unreachable_server_is_a_clear_error() -> None:
    client = QobrixClient(
        "http://127.0.0.1:9/api/v2", "u", "k", ClientSettings(backoff=0.01, retries=1, timeout=(0.5, 0.5))
    )
    with pytest.raises(QobrixError, match=r"^entity properties, page 1: cannot reach Qobrix after 1 retries") as raised:
        client.list_page("properties", "properties", PARAMS)
    assert (raised.value.entity, raised.value.page) == ("properties", 1)


def test_a_wrong_shape_is_malformed(sandbox: SandboxServer) -> None:
    client = client_for(sandbox)
    with pytest.raises(MalformedResponseError, match="not a Qobrix list envelope"):
        client.list_page(
            "properties", f"properties/{client.list_page('properties', 'properties', PARAMS).records[0]['id']}", {}
        )


def test_requests_per_second_cap_spaces_calls() -> None:
    limiter = RateLimiter(20)
    started = time.monotonic()
    for _ in range(11):
        limiter.wait()
    assert time.monotonic() - started >= 0.45


def answer(status: int, body: bytes) -> requests.Response:
    response = requests.Response()
    response.status_code, response._content, response.encoding = status, body, "utf-8"
    return response


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_name_the_settings_to_check(status: int) -> None:
    with pytest.raises(QobrixAuthError) as raised:
        QobrixClient._raise_for_status(answer(status, b"denied"), entity="agents", page=3)
    error = raised.value
    assert (error.status, error.entity, error.page) == (status, "agents", 3)
    assert f"Qobrix refused the credentials (HTTP {status}); check QOBRIX_API_USER and QOBRIX_API_KEY" in str(error)


@pytest.mark.parametrize("status", [400, 404, 500])
def test_other_refusals_keep_the_status_and_the_start_of_the_body(status: int) -> None:
    body = "é" + "x" * 298 + "CUT" + "y" * 100
    with pytest.raises(QobrixError) as raised:
        QobrixClient._raise_for_status(answer(status, body.encode()), entity="properties", page=None)
    assert not isinstance(raised.value, QobrixAuthError)
    assert raised.value.status == status
    assert str(raised.value).endswith(f"HTTP {status}: {body[:300]}")
    QobrixClient._raise_for_status(answer(200, b"{}"), entity="properties", page=1)


def test_each_thread_keeps_one_session_and_its_connections(sandbox: SandboxServer) -> None:
    client = client_for(sandbox)
    for page in (1, 2, 3):
        client.list_page("properties", "properties", {**PARAMS, "page": page})
    first = client._session()
    assert len(client._sessions) == 1 and client._session() is first
    other = []
    worker = threading.Thread(target=lambda: other.append(client._session()))
    worker.start()
    worker.join()
    assert len(client._sessions) == 2 and other[0] is not first
    assert first.headers.items() >= client._headers.items()


def test_answers_worth_retrying_wait_longer_each_time_up_to_the_cap() -> None:
    """urllib3 retries 5xx answers: no wait before the first retry, then the backoff doubling from
    its first delay, each wait capped at `max_backoff` (here 0.25 s twice, against 1.2 s uncapped)."""
    with sandbox_with(rate=1.0, kinds=("503",), retry_after=0) as server:
        client = client_for(server, ClientSettings(backoff=0.2, max_backoff=0.25, retries=3))
        started = time.monotonic()
        with pytest.raises(QobrixError, match="HTTP 503"):
            client.list_page("properties", "properties", PARAMS)
        elapsed = time.monotonic() - started
    assert server.faults.seen["503"] == 4
    assert 0.5 <= elapsed < 1.1, elapsed


def test_https_gets_the_same_retries_and_pool_as_http() -> None:
    client = QobrixClient("https://qobrix.example/api/v2", "u", "k", ClientSettings(retries=4, pool_size=3))
    session = client._session()
    for url in ("https://qobrix.example/api/v2/properties", "http://qobrix.example/api/v2/properties"):
        adapter = session.get_adapter(url)
        retry = adapter.max_retries
        assert (retry.total, retry.status, retry.read, retry.on_retry) == (4, 4, False, client._count)
        assert adapter._pool_maxsize == 3


def test_cut_responses_outlasting_the_retries_name_entity_page_and_cause() -> None:
    with sandbox_with(rate=1.0, kinds=("cut",)) as server:
        client = client_for(server, ClientSettings(backoff=0.01, retries=2))
        with pytest.raises(QobrixError, match=r"^entity properties, page 4: gave up after 2 retries: ") as raised:
            client.list_page("properties", "properties", {**PARAMS, "page": 4})
    assert (raised.value.entity, raised.value.page) == ("properties", 4) and client.calls == 3


@contextmanager
def answering(body: bytes) -> Iterator[str]:
    """A server answering every GET with `body` (JSON), as a Qobrix base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/v2"
    finally:
        server.shutdown()


def test_a_json_document_that_is_not_an_object_is_malformed() -> None:
    with answering(b"[1, 2]") as base_url, pytest.raises(MalformedResponseError) as raised:
        QobrixClient(base_url, "u", "k", FAST).get_json("properties", {}, entity="properties", page=2)
    assert (
        str(raised.value) == ("entity properties, page 2: malformed JSON body (6 bytes): the body is not a JSON object")
        and raised.value.body == b"[1, 2]"
    )


def test_a_list_envelope_whose_data_is_not_a_list_is_malformed() -> None:
    envelope = b'{"data": {"id": 1}, "pagination": {"count": 1, "has_next_page": false}}'
    with answering(envelope) as base_url, pytest.raises(MalformedResponseError) as raised:
        QobrixClient(base_url, "u", "k", FAST).list_page("properties", "properties", {"page": 3})
    assert str(raised.value) == "entity properties, page 3: not a Qobrix list envelope: `data` is not a list"
    assert orjson.loads(raised.value.body) == orjson.loads(envelope), "the document is kept for landing"


def test_a_page_keeps_the_number_it_was_asked_for() -> None:
    envelope = b'{"data": [{"id": 1}], "pagination": {"count": 41, "has_next_page": true}}'
    with answering(envelope) as base_url:
        page = QobrixClient(base_url, "u", "k", FAST).list_page("properties", "properties", {"page": "7"})
    assert (page.number, page.records, page.count, page.has_next) == (7, [{"id": 1}], 41, True)
