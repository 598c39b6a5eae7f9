"""The API clients an operator registered (`mls2 clients add`), with salted hashes of their secrets.

The registry is a small JSON file under MLS2_DATA_DIR/state, written atomically; a secret is
shown once, when it is made, and only its PBKDF2 hash is kept.
"""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from conf.files import write_atomically

HASH_ITERATIONS = 200_000
CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ClientError(ValueError):
    """A client id or registry the operator must fix."""


@dataclass(frozen=True)
class ApiClient:
    client_id: str
    requests_per_minute: int | None
    """None: the server's default (MLS2_API_RATE_LIMIT_PER_MINUTE)."""
    generation: str = ""
    """Which secret the client has: a digest of its stored hash, new with every secret (a rotation, or
    the client removed and added again). Tokens carry it; one issued under another secret is refused."""


def _hash(secret: str, salt: bytes, iterations: int = HASH_ITERATIONS) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


UNKNOWN_CLIENT_SALT = bytes(16)
"""Salt of the hash computed for a client id that is not registered: answering it as slowly as a
wrong secret does not tell which ids exist."""


def _generation(stored: str) -> str:
    return hashlib.sha256(stored.encode()).hexdigest()[:16]


def _client(client_id: str, entry: dict) -> ApiClient:
    return ApiClient(client_id, entry.get("requests_per_minute"), _generation(entry["secret_hash"]))


class ClientRegistry:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._cache: tuple[int, dict] | None = None
        self._verified: dict[tuple[str, str], str] = {}

    def _entries(self) -> dict:
        try:
            stamp = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return {}
        if self._cache is None or self._cache[0] != stamp:
            try:
                self._cache = (stamp, orjson.loads(self.path.read_bytes()))
            except orjson.JSONDecodeError as error:
                raise ClientError(f"{self.path} is not valid JSON ({error}); fix or remove it") from None
        return self._cache[1]

    def _save(self, entries: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(
            self.path, orjson.dumps(entries, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS), mode=0o600
        )

    def add(self, client_id: str, requests_per_minute: int | None = None, *, replace: bool = False) -> str:
        """Register a client (or, with `replace`, give it a new secret) and return the secret, shown once."""
        if not CLIENT_ID.match(client_id):
            raise ClientError(f"client id {client_id!r}: use 1-64 letters, digits, '.', '_' or '-'")
        entries = dict(self._entries())
        if client_id in entries and not replace:
            raise ClientError(f"client {client_id!r} exists; remove it first or rotate its secret with --rotate")
        secret = secrets.token_urlsafe(32)
        if requests_per_minute is None and client_id in entries:
            requests_per_minute = entries[client_id].get("requests_per_minute")
        entries[client_id] = {
            "secret_hash": _hash(secret, secrets.token_bytes(16)),
            "requests_per_minute": requests_per_minute,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self._save(entries)
        return secret

    def remove(self, client_id: str) -> None:
        entries = dict(self._entries())
        if entries.pop(client_id, None) is None:
            raise ClientError(f"no client {client_id!r}")
        self._save(entries)

    def clients(self) -> list[ApiClient]:
        return [_client(cid, entry) for cid, entry in sorted(self._entries().items())]

    def get(self, client_id: str) -> ApiClient | None:
        entry = self._entries().get(client_id)
        return None if entry is None else _client(client_id, entry)

    def verify(self, client_id: str, secret: str) -> ApiClient | None:
        """The client, if `secret` is its secret (constant-time; a verified pair is remembered, hashing is
        slow). Blocking: call it off the event loop."""
        entry = self._entries().get(client_id)
        if entry is None:
            _hash(secret, UNKNOWN_CLIENT_SALT)
            return None
        stored = entry["secret_hash"]
        remembered = (client_id, hashlib.sha256(secret.encode()).hexdigest())
        if self._verified.get(remembered) != stored:
            _, iterations, salt, _ = stored.split("$")
            if not hmac.compare_digest(_hash(secret, bytes.fromhex(salt), int(iterations)), stored):
                return None
            self._verified[remembered] = stored
        return _client(client_id, entry)
