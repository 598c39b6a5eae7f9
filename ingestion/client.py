"""The Qobrix API v2 client: pooled `requests` sessions, header auth, retries, politeness.

Retries live in two places, each for what only it can see:
- the adapter (`urllib3.Retry`) retries 429 (honouring `Retry-After`), 5xx and failed
  connections, with exponential backoff and jitter, before a response reaches us;
- `get_json` retries what happens after the headers arrived: a connection cut mid-body,
  a read timeout, a body that is not the JSON envelope. GETs are idempotent, so both
  are safe.
Requests in flight are bounded by the caller's worker count (one session per thread);
an optional requests-per-second cap applies across threads.
"""

import random
import threading
import time
from dataclasses import dataclass

import orjson
import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

from ingestion.errors import MalformedResponseError, QobrixAuthError, QobrixError

RETRY_STATUSES = (429, 500, 502, 503, 504)
BODY_ERRORS = (
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
)


class CountingRetry(Retry):
    """urllib3's Retry that reports each retry, so every HTTP request made is counted."""

    def __init__(self, *, on_retry=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.on_retry = on_retry

    def new(self, **kwargs) -> "CountingRetry":
        retry = super().new(**kwargs)
        retry.on_retry = self.on_retry
        return retry

    def increment(self, *args, **kwargs) -> "CountingRetry":
        """The next state, counted; urllib3 raises here instead when no retry is left."""
        retry = super().increment(*args, **kwargs)
        if self.on_retry is not None:
            self.on_retry()
        return retry


@dataclass(frozen=True)
class ClientSettings:
    timeout: tuple[float, float] = (5.0, 30.0)
    """(connect, read) seconds; no call is made without both."""
    retries: int = 6
    backoff: float = 0.5
    """First backoff in seconds; doubles each retry, with jitter, up to `max_backoff`."""
    max_backoff: float = 30.0
    requests_per_second: float | None = None
    pool_size: int = 8


@dataclass(frozen=True)
class Page:
    number: int
    records: list
    count: int
    has_next: bool


class RateLimiter:
    """At most `rate` calls a second across threads (a token bucket of one second's burst)."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def wait(self) -> None:
        if not self.rate:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            self._next = slot + 1.0 / self.rate
        if slot > now:
            time.sleep(slot - now)


class QobrixClient:
    """Reads Qobrix: list pages and single documents, counting every HTTP call it makes."""

    def __init__(self, base_url: str, api_user: str, api_key: str, settings: ClientSettings | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.settings = settings or ClientSettings()
        self._headers = {"X-Api-User": api_user, "X-Api-Key": api_key, "Accept": "application/json"}
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._limiter = RateLimiter(self.settings.requests_per_second)
        self.calls = 0
        """HTTP requests made, retries included."""

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers.update(self._headers)
            retry = CountingRetry(
                on_retry=self._count,
                total=self.settings.retries,
                connect=self.settings.retries,
                read=False,  # a read error is raised as it is, for get_json to retry (0 made it a MaxRetryError)
                status=self.settings.retries,
                backoff_factor=self.settings.backoff,
                backoff_jitter=self.settings.backoff,
                backoff_max=self.settings.max_backoff,
                status_forcelist=RETRY_STATUSES,
                allowed_methods=frozenset({"GET"}),
                respect_retry_after_header=True,
                raise_on_status=False,
            )
            adapter = HTTPAdapter(max_retries=retry, pool_connections=2, pool_maxsize=self.settings.pool_size)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def _count(self) -> None:
        with self._lock:
            self.calls += 1

    def get_json(self, path: str, params: dict | None = None, *, entity: str, page: int | None = None) -> dict:
        """A JSON document from `path`; raises a QobrixError naming entity and page once retries are spent."""
        attempt = 0
        while True:
            self._limiter.wait()
            self._count()
            try:
                response = self._session().get(f"{self.base_url}/{path}", params=params, timeout=self.settings.timeout)
                body = response.content
            except BODY_ERRORS as error:
                if error.args and isinstance(error.args[0], MaxRetryError):
                    raise QobrixError(
                        f"cannot reach Qobrix after {self.settings.retries} retries: {error.args[0].reason}",
                        entity=entity,
                        page=page,
                    ) from None
                cause = f"{type(error).__name__}: {error}"
            else:
                self._raise_for_status(response, entity=entity, page=page)
                try:
                    document = orjson.loads(body)
                    if not isinstance(document, dict):
                        raise TypeError("the body is not a JSON object")
                    return document
                except (orjson.JSONDecodeError, TypeError) as error:
                    cause = f"malformed JSON body ({len(body)} bytes): {error}"
                    if attempt >= self.settings.retries:
                        raise MalformedResponseError(cause, entity=entity, page=page, body=body) from None
            if attempt >= self.settings.retries:
                raise QobrixError(f"gave up after {attempt} retries: {cause}", entity=entity, page=page)
            attempt += 1
            time.sleep(self._backoff(attempt))

    def _backoff(self, attempt: int) -> float:
        delay = min(self.settings.max_backoff, self.settings.backoff * 2 ** (attempt - 1))
        return delay * random.uniform(0.5, 1.5)

    @staticmethod
    def _raise_for_status(response: requests.Response, *, entity: str, page: int | None) -> None:
        if response.status_code == 200:
            return
        detail = response.text[:300]
        if response.status_code in (401, 403):
            raise QobrixAuthError(
                f"Qobrix refused the credentials (HTTP {response.status_code}); "
                "check QOBRIX_API_USER and QOBRIX_API_KEY",
                entity=entity,
                page=page,
                status=response.status_code,
            )
        raise QobrixError(
            f"HTTP {response.status_code}: {detail}", entity=entity, page=page, status=response.status_code
        )

    def list_page(self, entity: str, path: str, params: dict) -> Page:
        """One page of a list endpoint, checked to be Qobrix's list envelope."""
        page = int(params.get("page", 1))
        document = self.get_json(path, params, entity=entity, page=page)
        try:
            records, meta = document["data"], document["pagination"]
            if not isinstance(records, list):
                raise TypeError("`data` is not a list")
            return Page(number=page, records=records, count=int(meta["count"]), has_next=bool(meta["has_next_page"]))
        except (KeyError, TypeError, ValueError) as error:
            raise MalformedResponseError(
                f"not a Qobrix list envelope: {error}", entity=entity, page=page, body=orjson.dumps(document)
            ) from None

    def close(self) -> None:
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()
