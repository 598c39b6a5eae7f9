"""The Qobrix client against the sandbox's real faults: retries, patience, and clear final errors."""

import time

import pytest

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


def test_slow_responses_time_out_and_are_retried() -> None:
    with sandbox_with(rate=0.5, kinds=("slow",), slow_seconds=1.5, seed=2) as server:
        client = client_for(server, ClientSettings(timeout=(2.0, 0.5), backoff=0.01, retries=6))
        page = client.list_page("properties", "properties", PARAMS)
        assert len(page.records) == 20 and client.calls >= 1


def test_errors_outlasting_the_retries_name_entity_page_and_cause() -> None:
    with sandbox_with(rate=1.0, kinds=("503",)) as server:
        with pytest.raises(QobrixError, match=r"entity properties, page 7: HTTP 503") as raised:
            client_for(server, ClientSettings(backoff=0.01, retries=2)).list_page(
                "properties", "properties", {**PARAMS, "page": 7}
            )
        assert raised.value.status == 503


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
    with pytest.raises(QobrixError, match="cannot reach Qobrix"):
        client.list_page("properties", "properties", PARAMS)


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
