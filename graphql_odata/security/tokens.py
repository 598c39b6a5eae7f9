"""Bearer tokens: short-lived JWTs (HS256) naming the client, signed with the server's key.

The key is MLS2_API_TOKEN_SECRET when set (several API processes share it), otherwise a random
key kept in MLS2_DATA_DIR/state (readable by the owner only), so tokens outlive a restart.
"""

import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt

from conf.files import write_atomically

ISSUER = "mls2"
ALGORITHM = "HS256"


class InvalidToken(ValueError):
    """A token that is missing, malformed, forged or expired; the message says which."""


def signing_key(configured: str | None, key_file: Path) -> bytes:
    if configured:
        return configured.encode()
    if not key_file.exists():
        write_atomically(key_file, secrets.token_hex(32).encode(), mode=0o600)
    return key_file.read_bytes().strip()


REMEMBERED_TOKENS = 10_000


class TokenIssuer:
    """Issues tokens and checks them. A token verified once is remembered with its expiry (decoding
    and checking a JWT was a sixth of the server's time per key lookup): a remembered token is
    only checked for expiry, so the client registry, consulted on every request, stays what
    revokes access at once."""

    def __init__(self, key: bytes, ttl_seconds: int) -> None:
        self.key = key
        self.ttl = timedelta(seconds=ttl_seconds)
        self._verified: dict[str, tuple[str, str, float]] = {}

    def issue(self, client_id: str, generation: str) -> tuple[str, int]:
        """A token for the client under its current secret (`generation`) and its lifetime in seconds."""
        now = datetime.now(UTC)
        claims = {"iss": ISSUER, "sub": client_id, "gen": generation, "iat": now, "exp": now + self.ttl}
        return jwt.encode(claims, self.key, algorithm=ALGORITHM), int(self.ttl.total_seconds())

    def client_of(self, token: str) -> tuple[str, str]:
        """The client a valid token names, and the generation of the secret it was issued under."""
        remembered = self._verified.get(token)
        if remembered is not None:
            if time.time() < remembered[2]:
                return remembered[0], remembered[1]
            self._verified.pop(token, None)
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "sub", "iss", "gen"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the access token has expired; request a new one at /oauth/token") from None
        except jwt.InvalidTokenError:
            raise InvalidToken("the access token is not valid; request one at /oauth/token") from None
        if len(self._verified) >= REMEMBERED_TOKENS:
            self._verified.clear()
        self._verified[token] = (claims["sub"], claims["gen"], claims["exp"])
        return claims["sub"], claims["gen"]
