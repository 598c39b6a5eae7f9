"""OAuth2 client credentials on the API: tokens, refusals with their reasons, rate limits, no secrets in logs."""

import base64
import logging
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient

from conf.settings import Settings, load_settings
from graphql_odata.main import create_app
from graphql_odata.security.clients import ClientRegistry
from graphql_odata.security.tokens import InvalidToken, TokenIssuer, signing_key

GRANT = "client_credentials"


@pytest.fixture
def registry(settings: Settings) -> ClientRegistry:
    return ClientRegistry(settings.paths.api_clients)


@pytest.fixture
def app(settings: Settings) -> TestClient:
    with TestClient(create_app(settings)) as client:
        yield client


def get_token(app: TestClient, client_id: str, secret: str) -> str:
    response = app.post("/oauth/token", data={"grant_type": GRANT, "client_id": client_id, "client_secret": secret})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert response.headers["Cache-Control"] == "no-store"
    return body["access_token"]


def assert_unauthorized(response, fragment: str, error: str | None = None) -> None:
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="mls2"')
    assert error is None or f'error="{error}"' in challenge
    body = response.json()["error"]
    assert body["code"] == "Unauthorized" and fragment in body["message"]


def test_no_token_is_401_with_a_challenge_and_health_docs_stay_open(app: TestClient) -> None:
    assert_unauthorized(app.get("/odata/Property"), "access token is required")
    assert_unauthorized(app.get("/odata/$metadata"), "access token is required")
    assert_unauthorized(app.get("/odata/Property", headers={"Authorization": "Basic abc"}), "access token is required")
    assert app.get("/health").status_code in {200, 503}
    assert app.get("/docs").status_code == 200


def test_a_registered_client_gets_a_token_that_opens_the_api(app: TestClient, registry: ClientRegistry) -> None:
    secret = registry.add("acme")
    token = get_token(app, "acme", secret)
    assert app.get("/odata", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    basic = base64.b64encode(f"acme:{secret}".encode()).decode()
    by_basic = app.post("/oauth/token", data={"grant_type": GRANT}, headers={"Authorization": f"Basic {basic}"})
    assert by_basic.status_code == 200 and by_basic.json()["access_token"]


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"grant_type": GRANT, "client_id": "acme", "client_secret": "wrong"}, 401, "invalid_client"),
        ({"grant_type": GRANT, "client_id": "nobody", "client_secret": "x"}, 401, "invalid_client"),
        ({"grant_type": GRANT, "client_id": "acme"}, 401, "invalid_client"),
        ({"grant_type": "password", "client_id": "acme", "client_secret": "x"}, 400, "unsupported_grant_type"),
        ({"client_id": "acme"}, 400, "invalid_request"),
    ],
)
def test_bad_token_requests_get_oauth_errors(
    app: TestClient, registry: ClientRegistry, form: dict, status: int, error: str
) -> None:
    registry.add("acme")
    response = app.post("/oauth/token", data=form)
    assert response.status_code == status and response.json()["error"] == error
    assert response.json()["error_description"]


def test_a_json_token_request_is_refused_as_invalid(app: TestClient) -> None:
    response = app.post("/oauth/token", json={"grant_type": GRANT})
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_forged_expired_and_orphaned_tokens_are_refused(
    app: TestClient, registry: ClientRegistry, settings: Settings
) -> None:
    secret = registry.add("acme")
    key = signing_key(None, settings.paths.api_token_key)
    past = datetime.now(UTC) - timedelta(hours=2)
    generation = registry.get("acme").generation
    claims = {"iss": "mls2", "sub": "acme", "gen": generation, "iat": past, "exp": past + timedelta(hours=1)}
    expired = jwt.encode(claims, key)
    assert_unauthorized(app.get("/odata", headers={"Authorization": f"Bearer {expired}"}), "expired", "invalid_token")
    forged = jwt.encode({**claims, "exp": datetime.now(UTC) + timedelta(hours=1)}, "x" * 32)
    assert_unauthorized(app.get("/odata", headers={"Authorization": f"Bearer {forged}"}), "not valid", "invalid_token")
    assert_unauthorized(app.get("/odata", headers={"Authorization": "Bearer garbage"}), "not valid", "invalid_token")
    token = get_token(app, "acme", secret)
    assert app.get("/odata", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    registry.remove("acme")
    assert_unauthorized(app.get("/odata", headers={"Authorization": f"Bearer {token}"}), "no longer registered")


def test_a_token_is_decoded_once_and_still_refused_once_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    decoded = []
    monkeypatch.setattr(
        jwt, "decode", lambda *args, _decode=jwt.decode, **kw: decoded.append(1) or _decode(*args, **kw)
    )
    issuer = TokenIssuer(b"k" * 32, ttl_seconds=1)
    token, _ = issuer.issue("acme", "g1")
    assert issuer.client_of(token) == issuer.client_of(token) == ("acme", "g1")
    assert len(decoded) == 1
    time.sleep(2.05)
    with pytest.raises(InvalidToken, match=r"^the access token has expired; request a new one at /oauth/token$"):
        issuer.client_of(token)
    assert len(decoded) == 2


@pytest.mark.parametrize(
    "claims",
    [
        {"iss": "someone-else", "sub": "acme", "gen": "g1", "exp": 4102444800},
        {"iss": "mls2", "sub": "acme", "gen": "g1"},
        {"iss": "mls2", "gen": "g1", "exp": 4102444800},
        {"sub": "acme", "gen": "g1", "exp": 4102444800},
        {"iss": "mls2", "sub": "acme", "exp": 4102444800},
    ],
    ids=["another issuer", "no expiry", "no client", "no issuer", "no secret generation"],
)
def test_a_token_signed_with_the_key_but_lacking_a_claim_is_refused(claims: dict) -> None:
    issuer = TokenIssuer(b"k" * 32, ttl_seconds=60)
    with pytest.raises(InvalidToken, match=r"^the access token is not valid; request one at /oauth/token$"):
        issuer.client_of(jwt.encode(claims, b"k" * 32, algorithm="HS256"))


def test_the_signing_key_kept_in_state_is_readable_by_its_owner_only(settings: Settings) -> None:
    key = signing_key(None, settings.paths.api_token_key)
    assert len(key) == 64 and settings.paths.api_token_key.stat().st_mode & 0o177 == 0
    assert signing_key(None, settings.paths.api_token_key) == key, "the key outlives a restart"
    assert signing_key("configured", settings.paths.api_token_key) == b"configured"


def test_a_token_lives_its_ttl_whatever_the_servers_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        token, lifetime = TokenIssuer(b"k" * 32, ttl_seconds=3600).issue("acme", "g1")
    finally:
        monkeypatch.undo()
        time.tzset()
    claims = jwt.decode(token, b"k" * 32, algorithms=["HS256"], issuer="mls2")
    assert lifetime == 3600 and abs(claims["exp"] - (time.time() + 3600)) < 60
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_a_rotated_secret_stops_the_old_one(app: TestClient, registry: ClientRegistry) -> None:
    old = registry.add("acme")
    new = registry.add("acme", replace=True)
    form = {"grant_type": GRANT, "client_id": "acme"}
    assert app.post("/oauth/token", data={**form, "client_secret": old}).status_code == 401
    assert app.post("/oauth/token", data={**form, "client_secret": new}).status_code == 200


def test_each_client_has_its_own_rate_limit(app: TestClient, registry: ClientRegistry) -> None:
    slow = {"Authorization": f"Bearer {get_token(app, 'slow', registry.add('slow', requests_per_minute=3))}"}
    fast = {"Authorization": f"Bearer {get_token(app, 'fast', registry.add('fast'))}"}
    assert [app.get("/odata", headers=slow).status_code for _ in range(3)] == [200, 200, 200]
    limited = app.get("/odata", headers=slow)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert (
        limited.json()["error"]["code"] == "TooManyRequests"
        and "3 requests per minute" in limited.json()["error"]["message"]
    )
    assert app.get("/odata", headers=fast).status_code == 200


def test_auth_can_be_turned_off_by_the_operator(tmp_path) -> None:
    settings = load_settings(mls2_data_dir=tmp_path / "data", mls2_api_auth=False)
    with TestClient(create_app(settings)) as client:
        assert client.get("/odata").status_code == 200


def test_secrets_and_tokens_never_reach_the_logs(
    app: TestClient, registry: ClientRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = registry.add("acme")
    token = get_token(app, "acme", secret)
    app.get("/odata/Property", headers={"Authorization": f"Bearer {token}"})
    app.post("/oauth/token", data={"grant_type": GRANT, "client_id": "acme", "client_secret": "wrong-" + secret})
    assert caplog.records
    assert secret not in caplog.text and token not in caplog.text
    stored = registry.path.read_text()
    assert secret not in stored and "pbkdf2_sha256$" in stored
    assert registry.path.stat().st_mode & 0o077 == 0


def test_server_processes_share_each_clients_rate_limit(settings: Settings, registry: ClientRegistry) -> None:
    """With MLS2_API_WORKERS > 1 each process keeps its buckets in one SQLite file: two apps (two
    processes' worth of state) let a client of 3 requests a minute make 3 between them, not 6."""
    shared = settings.model_copy(update={"mls2_api_workers": 2})
    secret = registry.add("slow", requests_per_minute=3)
    with TestClient(create_app(shared)) as first, TestClient(create_app(shared)) as second:
        headers = {"Authorization": f"Bearer {get_token(first, 'slow', secret)}"}
        assert [app.get("/odata", headers=headers).status_code for app in (first, second, second)] == [200] * 3
        assert first.get("/odata", headers=headers).status_code == 429
        assert second.get("/odata", headers=headers).status_code == 429
    assert (settings.paths.state / "rate_limits.sqlite").exists()


def test_shared_rate_limits_that_cannot_be_kept_answer_503(
    app: TestClient, settings: Settings, registry: ClientRegistry
) -> None:
    secret = registry.add("acme")
    headers = {"Authorization": f"Bearer {get_token(app, 'acme', secret)}"}
    (settings.paths.state / "rate_limits.sqlite").mkdir(parents=True)
    with TestClient(create_app(settings.model_copy(update={"mls2_api_workers": 2}))) as shared:
        response = shared.get("/odata", headers=headers)
        grant = shared.post("/oauth/token", data={"grant_type": GRANT, "client_id": "acme", "client_secret": secret})
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert "rate_limits.sqlite cannot be checked" in response.json()["error"]["message"]
    assert grant.status_code == 503 and grant.headers["Retry-After"] == "1"
    assert grant.json()["error"] == "temporarily_unavailable"


def test_the_app_reads_the_entity_model_before_its_first_request(tmp_path: Path) -> None:
    """Requests arriving together at a fresh server would otherwise each parse the mapping files."""
    program = (
        "from conf.settings import load_settings; from graphql_odata.main import create_app; "
        "from graphql_odata.schema import entity_sets; "
        f"create_app(load_settings(mls2_data_dir={str(tmp_path)!r})); print(entity_sets.cache_info().currsize)"
    )
    loaded = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "1"
