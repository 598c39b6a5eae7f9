"""The gate in front of /odata: a valid bearer token of a registered client, within its rate limit."""

from dataclasses import dataclass, field

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
            client_id = self.issuer.client_of(token.strip())
        except InvalidToken as error:
            raise ODataError(401, str(error), headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'}) from None
        client = self.registry.get(client_id)
        if client is None:
            raise ODataError(
                401,
                "the client of this token is no longer registered",
                headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
            )
        limit = client.requests_per_minute or self.settings.mls2_api_rate_limit_per_minute
        try:
            wait = self.limiter.acquire(client.client_id, limit)
        except RateLimitUnavailable as error:
            raise ODataError(503, str(error), headers={"Retry-After": "1"}) from None
        if wait:
            raise ODataError(
                429,
                f"client {client.client_id!r} exceeded {limit} requests per minute; retry after {wait:.0f} s",
                headers={"Retry-After": f"{wait:.0f}"},
            )
        return client
