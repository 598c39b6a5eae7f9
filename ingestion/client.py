"""The Qobrix API v2 client: one pooled `requests` session, header auth, retries on the adapter."""

from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ingestion.errors import MalformedResponseError, QobrixAuthError, QobrixError

RETRY_STATUSES = (429, 500, 502, 503, 504)


@dataclass(frozen=True)
class Page:
    number: int
    records: list[dict]
    count: int
    has_next: bool


class QobrixClient:
    """Reads Qobrix list endpoints page by page.

    Retries (429 honouring Retry-After, 5xx, connection errors) live on the mounted
    adapter, so every call gets them; GETs are idempotent, so retrying is safe.
    """

    def __init__(
        self,
        base_url: str,
        api_user: str,
        api_key: str,
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        retries: int = 5,
        backoff_factor: float = 0.5,
        pool_size: int = 8,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update({"X-Api-User": api_user, "X-Api-Key": api_key, "Accept": "application/json"})
        retry = Retry(
            total=retries,
            backoff_factor=backoff_factor,
            backoff_jitter=backoff_factor,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry, pool_connections=pool_size, pool_maxsize=pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def get_page(self, entity: str, path: str, page: int, *, limit: int = 100, params: dict | None = None) -> Page:
        """One page of a list endpoint; raises QobrixError naming entity and page."""
        query = {"page": page, "limit": limit, **(params or {})}
        try:
            response = self.session.get(f"{self.base_url}/{path}", params=query, timeout=self.timeout)
        except requests.RequestException as error:
            raise QobrixError(f"request failed after retries: {error}", entity=entity, page=page) from error
        if response.status_code in (401, 403):
            raise QobrixAuthError(
                f"Qobrix refused the credentials (HTTP {response.status_code}); "
                "check QOBRIX_API_USER and QOBRIX_API_KEY",
                entity=entity,
                page=page,
                status=response.status_code,
            )
        if response.status_code != 200:
            raise QobrixError(
                f"HTTP {response.status_code}: {response.text[:300]}",
                entity=entity,
                page=page,
                status=response.status_code,
            )
        try:
            body = orjson.loads(response.content)
            records, meta = body["data"], body["pagination"]
            if not isinstance(records, list):
                raise TypeError("data is not a list")
            return Page(number=page, records=records, count=int(meta["count"]), has_next=bool(meta["has_next_page"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise MalformedResponseError(f"not a Qobrix list envelope: {error}", entity=entity, page=page) from error

    def iter_pages(self, entity: str, path: str, *, limit: int = 100, params: dict | None = None) -> Iterator[Page]:
        page_number = 1
        while True:
            page = self.get_page(entity, path, page_number, limit=limit, params=params)
            yield page
            if not page.has_next or not page.records:
                return
            page_number += 1

    def close(self) -> None:
        self.session.close()
