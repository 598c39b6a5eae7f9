"""Loops with a bound: a test that waits or pages fails with a message instead of hanging or
exhausting memory when the thing it waits for never comes."""

import time
from collections.abc import Callable, Iterator

MAX_PAGES = 500
"""More pages than any test query has: hitting it means the links loop or never end."""


def next_links(get_page: Callable[[str], dict], url: str, *, max_pages: int = MAX_PAGES) -> Iterator[dict]:
    """Each page of an OData query, following `@odata.nextLink`; fails on a link already followed
    (the server's links loop) or past `max_pages`."""
    start, followed = url, {url}
    for _ in range(max_pages):
        page = get_page(url)
        yield page
        link = page.get("@odata.nextLink")
        if link is None:
            return
        if link in followed:
            raise AssertionError(f"@odata.nextLink went back to a page already read: {link}")
        followed.add(link)
        url = link
    raise AssertionError(f"@odata.nextLink still led on after {max_pages} pages from {start}")


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str, every: float = 0.05) -> None:
    """Return once `condition()` holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(every)
