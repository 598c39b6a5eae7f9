"""The gate in front of /odata: a valid bearer token of a registered client, within its rate limit."""

import hashlib
import hmac
from dataclasses import dataclass, field
from functools import cached_property

from conf.settings import Settings
from graphql_odata.odata.errors import ODataError
from graphql_odata.security.clients import ApiClient, ClientRegistry
from graphql_odata.security.ratelimit import RateLimiter, RateLimitUnavailable, SharedRateLimiter
from graphql_odata.security.tokens import InvalidToken, TokenIssuer, signing_key

REALM = 'Bearer realm="mls2"'


@dataclass
class Security:
    settings: Settings
    registry: ClientRegistry
    issuer: TokenIssuer
    limiter: RateLimiter | SharedRateLimiter = field(default_factory=RateLimiter)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Security":
        key = signing_key(settings.mls2_api_token_secret, settings.paths.api_token_key)
        shared = settings.mls2_api_workers > 1
        return cls(
            settings,
            ClientRegistry(settings.paths.api_clients),
            TokenIssuer(key, settings.mls2_api_token_ttl_seconds),
            SharedRateLimiter(settings.paths.state / "rate_limits.sqlite") if shared else RateLimiter(),
        )

    @cached_property
    def skiptoken_key(self) -> bytes:
        """The key `$skiptoken`s are signed with: derived from the token signing key, so every server
        process sharing that key reads the others' tokens, and a skiptoken is never a bearer token."""
        return hmac.new(self.issuer.key, b"mls2 $skiptoken", hashlib.sha256).digest()

    def authorize(self, authorization: str | None) -> ApiClient | None:
        """The calling client, or a 401/429 OData error; None when the operator turned auth off."""
        if not self.settings.mls2_api_auth:
            return None
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ODataError(
                401,
                "an access token is required: POST client credentials to /oauth/token, "
                "then send `Authorization: Bearer <token>`",
                headers={"WWW-Authenticate": REALM},
            )
        try:
            client_id, generation = self.issuer.client_of(token.strip())
        except InvalidToken as error:
            raise ODataError(401, str(error), headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'}) from None
        client = self.registry.get(client_id)
        if client is None or client.generation != generation:
            message = (
                "the client of this token is no longer registered"
                if client is None
                else "this token was issued under the client's previous secret; request a new one at /oauth/token"
            )
            raise ODataError(401, message, headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'})
        limit = client.requests_per_minute or self.settings.mls2_api_rate_limit_per_minute
        wait = self._wait(client.client_id, limit)
        if wait:
            raise ODataError(
                429,
                f"client {client.client_id!r} exceeded {limit} requests per minute; retry after {wait:.0f} s",
                headers={"Retry-After": f"{wait:.0f}"},
            )
        return client

    def _wait(self, bucket: str, per_minute: int) -> float:
        try:
            return self.limiter.acquire(bucket, per_minute)
        except RateLimitUnavailable as error:
            raise ODataError(503, str(error), headers={"Retry-After": "1"}) from None

    def token_attempt_wait(self, client_id: str, address: str) -> float:
        """Seconds until another token request for `client_id` from `address` may be checked (0: now).
        Every attempt counts, so guessing secrets, or making the server hash them, stays slow; counted
        per address too, so guesses from elsewhere cannot lock the client out. Raises
        RateLimitUnavailable when shared limits cannot be kept."""
        per_minute = self.settings.mls2_api_token_attempts_per_minute
        return self.limiter.acquire(f"token attempts of client {client_id} from {address}", per_minute)

    def address_attempt_wait(self, address: str) -> float:
        """As `token_attempt_wait`, for every token request from `address` (three times the budget)."""
        return self.limiter.acquire(
            f"token attempts from {address}", 3 * self.settings.mls2_api_token_attempts_per_minute
        )
