"""Faults on demand: each kind happens, looks like the real thing, and leaves the rest intact."""

import threading
import time

import pytest
import requests

from ingestion.sandbox import SANDBOX_API_KEY, SANDBOX_API_USER, SandboxServer, SandboxWorld
from ingestion.sandbox.faults import FaultConfig, FaultConfigError

AUTH = {"X-Api-User": SANDBOX_API_USER, "X-Api-Key": SANDBOX_API_KEY}


def served(kind: str, **settings: object):
    return SandboxServer(SandboxWorld(seed=1, properties=300), faults=FaultConfig(rate=1.0, kinds=(kind,), **settings))


def fetch(server: SandboxServer, **params: object) -> requests.Response:
    return requests.get(f"{server.base_url}/properties", params={"limit": 50, **params}, headers=AUTH, timeout=10)


@pytest.mark.parametrize("status", ["500", "502", "503"])
def test_server_errors_use_the_error_envelope(status: str) -> None:
    with served(status) as server:
        response = fetch(server)
        assert response.status_code == int(status) and response.json() == {"errors": [f"sandbox fault: HTTP {status}"]}


def test_429_says_when_to_retry() -> None:
    with served("429", retry_after=2) as server:
        response = fetch(server)
        assert response.status_code == 429 and response.headers["Retry-After"] == "2"


def test_slow_responses_stall_then_answer() -> None:
    with served("slow", slow_seconds=0.6) as server:
        started = time.monotonic()
        response = fetch(server)
        assert time.monotonic() - started >= 0.6 and response.status_code == 200 and len(response.json()["data"]) == 50


def test_stopping_the_server_cuts_a_stall_short() -> None:
    """A stopping server waits for the responses in flight: a stall ends there, not after its seconds."""
    answers: list[int] = []
    with served("slow", slow_seconds=60) as server:
        asking = threading.Thread(target=lambda: answers.append(fetch(server).status_code))
        asking.start()
        deadline = time.monotonic() + 5
        while not server.faults.seen.get("slow"):
            assert time.monotonic() < deadline, "the request never reached the sandbox"
            time.sleep(0.01)
        started = time.monotonic()
    assert time.monotonic() - started < 5
    asking.join(timeout=5)
    assert answers == [200]


def test_cut_connections_break_mid_body() -> None:
    with served("cut") as server, pytest.raises(requests.exceptions.ChunkedEncodingError):
        fetch(server)


def test_malformed_pages_are_not_json() -> None:
    with served("malformed") as server:
        response = fetch(server)
        assert response.status_code == 200
        with pytest.raises(requests.exceptions.JSONDecodeError):
            response.json()


def test_fault_rate_hits_about_that_fraction_in_a_fixed_sequence() -> None:
    def statuses() -> list[int]:
        world = SandboxWorld(seed=1, properties=50)
        with SandboxServer(world, faults=FaultConfig(rate=0.3, kinds=("503",), seed=5)) as server:
            return [fetch(server, limit=1).status_code for _ in range(60)]

    first, again = statuses(), statuses()
    assert first == again
    assert 8 <= first.count(503) <= 30


def test_defects_are_permanent_and_of_every_kind() -> None:
    world = SandboxWorld(seed=1, properties=400)
    with SandboxServer(world, faults=FaultConfig(defect_rate=0.2)) as server:
        pages = [fetch(server, expand="false", media="false", limit=100, page=p).json()["data"] for p in (1, 2, 3, 4)]
        again = fetch(server, expand="false", media="false", limit=100, page=1).json()["data"]
    records = [r for page in pages for r in page]
    clean = [world.record("properties", i) for i in range(400)]
    broken = [r for r, c in zip(records, clean, strict=True) if r != c]
    assert 40 <= len(broken) <= 130
    assert again == pages[0]
    assert any("name" not in r for r in broken)
    assert any("x_unexpected_field" in r for r in broken)
    assert any(r.get("modified") == "31/12/2025 25:61" for r in broken)
    assert any(any(v == "n/a" for v in r.values()) for r in broken)


def test_churn_changes_data_while_a_client_pages() -> None:
    world = SandboxWorld(seed=1, properties=300)
    with SandboxServer(world, faults=FaultConfig(churn_every=2)) as server:
        counts = [
            fetch(server, page=p, expand="false", media="false").json()["pagination"]["count"] for p in range(1, 7)
        ]
    assert world.step == 3 and counts[0] < counts[-1]


def test_admin_endpoint_switches_faults_on_and_off(sandbox: SandboxServer) -> None:
    put = requests.put(f"{sandbox.url}/_sandbox/faults", json={"rate": 1.0, "kinds": ["503"]}, timeout=5)
    assert put.status_code == 200 and put.json()["rate"] == 1.0
    assert fetch(sandbox).status_code == 503
    requests.put(f"{sandbox.url}/_sandbox/faults", json={"rate": 0.0}, timeout=5)
    assert fetch(sandbox).status_code == 200
    bad = requests.put(f"{sandbox.url}/_sandbox/faults", json={"rate": 2, "kinds": ["gremlins"]}, timeout=5)
    assert bad.status_code == 400 and "gremlins" in bad.json()["errors"][0]


def test_fault_settings_are_checked() -> None:
    with pytest.raises(FaultConfigError, match="between 0 and 1"):
        FaultConfig(rate=1.5).validate()
    with pytest.raises(FaultConfigError, match="unknown fault kinds"):
        FaultConfig(kinds=("lightning",)).validate()
