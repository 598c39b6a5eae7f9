"""The RESO server a check talks to: any RESO Web API root, with a bearer token, over HTTP."""

import time
from collections.abc import Iterator
from urllib.parse import quote, urlencode, urljoin

import requests

MAX_PAGES = 100_000
"""More pages than any resource a check replicates should need: past it, the links loop or never end."""


RATE_LIMIT_RETRIES = 3
MAX_RATE_LIMIT_WAIT = 60
"""Seconds a 429's Retry-After is waited out at most before asking again."""


class ServerError(RuntimeError):
    """The server could not be asked or answered unusably; the message names the request."""


class ResoServer:
    """GETs against one service root. Every answer must be a status 200 and JSON (or XML for
    `$metadata`); anything else is a `ServerError` naming the URL, status and the start of the body."""

    def __init__(self, root: str, token: str, *, timeout: float = 60.0) -> None:
        self.root = root.rstrip("/") + "/"
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.requests_sent = 0

    @classmethod
    def with_client_credentials(
        cls, root: str, token_url: str, client_id: str, client_secret: str, *, timeout: float = 60.0
    ) -> "ResoServer":
        """Sign in with OAuth2 client credentials (RFC 6749 4.4), as RESO servers commonly ask."""
        try:
            answer = requests.post(
                token_url,
                data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret},
                timeout=timeout,
            )
        except requests.RequestException as error:
            raise ServerError(f"cannot reach the token endpoint {token_url}: {error}") from None
        if answer.status_code != 200:
            raise ServerError(
                f"the token endpoint {token_url} refused the client: {answer.status_code} {answer.text[:200]}"
            )
        try:
            token = answer.json()["access_token"]
        except (ValueError, KeyError, TypeError):
            raise ServerError(f"the token endpoint {token_url} answered without an access_token") from None
        return cls(root, token, timeout=timeout)

    def url(self, path: str) -> str:
        return urljoin(self.root, path)

    def _get(self, url: str, params: dict | None, headers: dict | None) -> requests.Response:
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            self.requests_sent += 1
            try:
                answer = self.session.get(url, params=params, headers=headers, timeout=self.timeout)
            except requests.RequestException as error:
                raise ServerError(f"GET {url}: {error}") from None
            wait = answer.headers.get("Retry-After", "")
            if answer.status_code != 429 or attempt == RATE_LIMIT_RETRIES or not wait.isdigit():
                break
            time.sleep(min(int(wait), MAX_RATE_LIMIT_WAIT))
        if answer.status_code != 200:
            raise ServerError(f"GET {answer.url}: {answer.status_code} {answer.text[:300]}")
        return answer

    def metadata(self) -> bytes:
        return self._get(self.url("$metadata"), None, {"Accept": "application/xml"}).content

    def get_json(self, url: str, params: dict | None = None, headers: dict | None = None) -> dict:
        if params:
            # Spaces as %20 (not the form encoding's `+`, which OData servers need not read as one),
            # and `$` kept: some servers do not decode `%24filter`.
            url = f"{url}?{urlencode(params, quote_via=quote, safe='$')}"
        answer = self._get(url, None, headers)
        try:
            page = answer.json()
        except ValueError:
            raise ServerError(f"GET {answer.url}: the answer is not JSON: {answer.text[:200]!r}") from None
        if not isinstance(page, dict):
            raise ServerError(f"GET {answer.url}: the answer is not a JSON object")
        return page

    def page(self, resource: str, **options: str | int) -> dict:
        """One request for a collection with OData query options (`top=5` is sent as `$top=5`)."""
        return self.get_json(self.url(resource), {f"${name}": value for name, value in options.items()})

    def count(self, resource: str, condition: str | None = None) -> int:
        """`$count` of a resource (as RESO's tools ask it: `$top=1&$count=true`), of those matching
        `condition` when given."""
        options: dict[str, str | int] = {"top": 1, "count": "true"} | ({"filter": condition} if condition else {})
        page = self.page(resource, **options)
        count = page.get("@odata.count")
        if not isinstance(count, int):
            raise ServerError(f"{resource}?$count=true answered no @odata.count")
        return count

    def pages(self, url: str, params: dict | None = None, *, max_page_size: int | None = None) -> Iterator[dict]:
        """Every page of a query, following `@odata.nextLink` (a link read twice, or more than
        `MAX_PAGES` pages, is an error: the server's links loop)."""
        headers = {"Prefer": f"odata.maxpagesize={max_page_size}"} if max_page_size else None
        followed: set[str] = set()
        for _ in range(MAX_PAGES):
            page = self.get_json(url, params, headers)
            yield page
            link = page.get("@odata.nextLink")
            if link is None:
                return
            if not isinstance(link, str) or link in followed:
                raise ServerError(f"@odata.nextLink {link!r} goes back to a page already read")
            followed.add(link)
            url, params = urljoin(url, link), None
        raise ServerError(f"@odata.nextLink still led on after {MAX_PAGES} pages from {url}")
