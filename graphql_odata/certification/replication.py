"""Replicating a resource the ways RESO's tools do, each counted against the server's `$count`.

- `NextLink`: the collection, following `@odata.nextLink` (`Prefer: odata.maxpagesize`).
- `TopAndSkip`: `$top` pages, `$skip` advanced by the records read.
- `TimestampAsc` / `TimestampDesc`: `$top` pages ordered by ModificationTimestamp, each page
  starting from the last timestamp read. RESO's client starts the next page strictly after it
  (`lt` going down), which skips records that share the boundary's timestamp; a careful client
  starts at it (`ge` / `le`) and drops what it has already read, and when a whole page shares one
  timestamp it reads that timestamp's records by nextLink before moving past it. This one is the
  careful client, so a server passes only when every record is reachable that way.
"""

from collections.abc import Callable, Iterator
from datetime import datetime

from graphql_odata.certification.report import Replication
from graphql_odata.certification.server import ResoServer, ServerError

TIMESTAMP = "ModificationTimestamp"
STRATEGIES = ("NextLink", "TopAndSkip", "TimestampAsc", "TimestampDesc")
MAX_REQUESTS = 100_000
"""Requests one strategy may send for one resource: past it the server's paging does not advance."""


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def next_link(server: ResoServer, resource: str, page_size: int) -> Iterator[list[dict]]:
    for page in server.pages(server.url(resource), max_page_size=page_size):
        yield page.get("value", [])


def top_and_skip(server: ResoServer, resource: str, page_size: int) -> Iterator[list[dict]]:
    read = 0
    for _ in range(MAX_REQUESTS):
        records = server.page(resource, top=page_size, skip=read).get("value", [])
        if not records:
            return
        yield records
        read += len(records)
    raise ServerError(f"{resource}: $skip paging still returned records after {MAX_REQUESTS} requests")


def by_timestamp(server: ResoServer, resource: str, page_size: int, *, descending: bool) -> Iterator[list[dict]]:
    """Pages from the last timestamp read on, until one is empty. A server may send fewer records
    than `$top` asks: each page still moves the boundary on, or past a timestamp whose records it
    has read whole. Records without a timestamp are out of reach (the check counts them apart)."""
    direction, inclusive, beyond = ("desc", "le", "lt") if descending else ("asc", "ge", "gt")
    boundary: str | None = None
    operator = inclusive
    for _ in range(MAX_REQUESTS):
        options: dict[str, str | int] = {"top": page_size, "orderby": f"{TIMESTAMP} {direction}"}
        condition = f"{TIMESTAMP} ne null" if boundary is None else f"{TIMESTAMP} {operator} {boundary}"
        records = server.page(resource, filter=condition, **options).get("value", [])
        if not records:
            return
        yield records
        stamps = [r[TIMESTAMP] for r in records if isinstance(r.get(TIMESTAMP), str)]
        if not stamps:
            raise ServerError(f"{resource}: a page filtered on {TIMESTAMP} came back without {TIMESTAMP}s")
        last = (min if descending else max)(stamps, key=_instant)
        if boundary is not None and _instant(last) == _instant(boundary):
            # The whole page shares the boundary's timestamp: read all of it by nextLink, then go past it.
            url = server.url(resource)
            for page in server.pages(url, {"$filter": f"{TIMESTAMP} eq {boundary}"}, max_page_size=page_size):
                yield page.get("value", [])
            operator = beyond
        else:
            boundary, operator = last, inclusive
    raise ServerError(f"{resource}: timestamp paging did not advance after {MAX_REQUESTS} requests")


def replicate(
    server: ResoServer,
    resource: str,
    strategy: str,
    key: Callable[[dict], object],
    record_count: int,
    *,
    page_size: int,
    keep: Callable[[dict], None] | None = None,
) -> Replication:
    """Every record `strategy` reaches, counted and (when `keep` is given) handed over one by one."""
    pages = {
        "NextLink": lambda: next_link(server, resource, page_size),
        "TopAndSkip": lambda: top_and_skip(server, resource, page_size),
        "TimestampAsc": lambda: by_timestamp(server, resource, page_size, descending=False),
        "TimestampDesc": lambda: by_timestamp(server, resource, page_size, descending=True),
    }[strategy]
    result = Replication(resource, strategy, record_count)
    seen: set = set()
    sent_before = server.requests_sent
    # Re-reading records at page boundaries costs a few times the count at most: past this bound the
    # server's paging does not move on (it ignores $skip, or a filter).
    bound = 4 * record_count + 10 * page_size
    try:
        for records in pages():
            if result.records_fetched > bound:
                raise ServerError(
                    f"read {result.records_fetched} records for a $count of {record_count}: paging does not move on"
                )
            for record in records:
                result.records_fetched += 1
                identity = key(record)
                if identity not in seen:
                    seen.add(identity)
                    if keep is not None:
                        keep(record)
    except ServerError as error:
        result.error = str(error)
    except (KeyError, TypeError, ValueError) as error:
        result.error = f"a record the server sent cannot be read: {error!r}"
    result.unique_records_fetched = len(seen)
    result.requests = server.requests_sent - sent_before
    return result
