"""How one entity's records are read: keyset scans over `modified`, safe while data changes.

Offset paging misses records: when a record on an earlier page changes, it moves to the
end of a `modified` order and every later record shifts left by one. A keyset scan asks
instead for `modified >= cursor` again and again, moving the cursor to the last record
seen, so a record changed while we page only moves ahead of the cursor, where the scan
still meets it. Records sharing one timestamp are paged by page number within it.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from conf.entities import Entity
from ingestion.client import Page, QobrixClient

PAGE_SIZE = 100
SEARCH_FORMAT = "%Y-%m-%d %H:%M:%S"
"""How times are written in `search` expressions (UTC, to the second, as Qobrix stores them)."""

PageSink = Callable[[list[dict], datetime | None], None]
"""Receives each page's records and the cursor to resume from once they are landed."""


def parse_time(value: object) -> datetime | None:
    """A Qobrix date-time (`2025-12-02T10:00:00+00:00` or `2025-12-02 10:00:00`), as UTC; None if it is not one."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def search_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(SEARCH_FORMAT)


def newest(records: list[dict], field: str) -> datetime | None:
    moments = [moment for record in records if (moment := parse_time(record.get(field))) is not None]
    return max(moments, default=None)


@dataclass(frozen=True)
class Window:
    """Records with `lower <= modified < upper` (open ends when None)."""

    number: int
    lower: datetime | None
    upper: datetime | None
    cursor: datetime | None = None


class Scanner:
    """Reads one entity through a client; lands nothing itself (the sink does).

    `field` is the time the keyset follows: `modified` for live records, `trashed` for the trash.
    """

    def __init__(
        self, client: QobrixClient, entity: Entity, *, page_size: int = PAGE_SIZE, field: str = "modified"
    ) -> None:
        self.client = client
        self.entity = entity
        self.page_size = page_size
        self.field = field

    def _page(
        self, *, page: int = 1, search: str | None = None, trashed: bool = False, sort: str | None = None
    ) -> Page:
        params: dict = {**self.entity.params, "limit": self.page_size, "page": page}
        if sort:
            params["sort[]"] = sort
        if search:
            params["search"] = search
        if trashed:
            params["trashed"] = "true"
        return self.client.list_page(self.entity.name, self.entity.path, params)

    def _probe(self, search: str | None, position: int) -> Page:
        params = {**self.entity.params, "limit": 1, "page": position, "sort[]": self.field}
        if search:
            params["search"] = search
        return self.client.list_page(self.entity.name, self.entity.path, params)

    def plan(self, lower: datetime | None, windows: int) -> tuple[list[Window], int]:
        """Split `field >= lower` into up to `windows` ranges of about as many records; and their count."""
        search = self._range(lower, None)
        count = self._probe(search, 1).count
        wanted = max(1, min(windows, count // (self.page_size * 5)))
        bounds: list[datetime] = []
        for k in range(1, wanted):
            sample = self._probe(search, k * count // wanted + 1).records
            moment = newest(sample, self.field) if sample else None
            if moment and (not bounds or moment > bounds[-1]) and (lower is None or moment > lower):
                bounds.append(moment)
        edges = [lower, *bounds, None]
        return [Window(number, edges[number], edges[number + 1]) for number in range(len(edges) - 1)], count

    def _range(self, lower: datetime | None, upper: datetime | None) -> str | None:
        clauses = [f"{self.field} >= '{search_time(lower)}'"] if lower else []
        if upper:
            clauses.append(f"{self.field} < '{search_time(upper)}'")
        return " and ".join(clauses) or None

    def scan(
        self, window: Window, sink: PageSink, *, trashed: bool = False, stop: Callable[[], bool] = lambda: False
    ) -> None:
        """Keyset scan of one window; `sink` gets every page, then the cursor to resume from."""
        cursor = window.cursor or window.lower
        seen: set[str] = set()
        while not stop():
            search = self._range(cursor, window.upper)
            page = self._page(search=search, trashed=trashed, sort=self.field)
            fresh = [r for r in page.records if not (isinstance(r, dict) and r.get("id") in seen)]
            last = newest(page.records, self.field)
            if len(page.records) < self.page_size:
                sink(fresh, last or cursor)
                return
            if last is None:
                sink(fresh, cursor)
                self._offset_scan(sink, search=search, sort=self.field, trashed=trashed, first=2, stop=stop)
                return
            if cursor is not None and last <= cursor:
                sink(fresh, cursor)
                same = f"{self.field} == '{search_time(cursor)}'"
                self._offset_scan(sink, search=same, sort=self.field, trashed=trashed, first=2, stop=stop)
                cursor, seen = cursor + timedelta(seconds=1), set()
                continue
            sink(fresh, last)
            seen = {r.get("id") for r in page.records if isinstance(r, dict) and parse_time(r.get(self.field)) == last}
            cursor = last

    def scan_nulls(self, sink: PageSink, *, trashed: bool = False, stop: Callable[[], bool] = lambda: False) -> None:
        """Records without a time in `field`, which no keyset scan meets (by page number)."""
        self._offset_scan(sink, search=f"{self.field} == null", sort=None, trashed=trashed, stop=stop)

    def scan_whole(self, sink: PageSink) -> None:
        """Every record by page number: for entities with no `modified` to filter or sort by."""
        self._offset_scan(sink, search=None, sort=None)

    def _offset_scan(
        self, sink: PageSink, *, search: str | None, sort: str | None, trashed: bool = False, first: int = 1,
        stop: Callable[[], bool] = lambda: False,
    ) -> None:  # fmt: skip
        """Pages by number from `first`: for what a keyset cannot order (no time, or one timestamp)."""
        number = first
        while not stop():
            page = self._page(page=number, search=search, sort=sort, trashed=trashed)
            sink(page.records, None)
            if not page.has_next or len(page.records) < self.page_size:
                return
            number += 1

    def fetch_by(self, field: str, values: list[str], sink: PageSink, *, batch: int = 40) -> None:
        """Records whose `field` is one of `values` (test mode: only what the chosen properties need)."""
        for start in range(0, len(values), batch):
            chunk = ", ".join(f"'{value}'" for value in values[start : start + batch] if "'" not in value)
            number = 1
            while True:
                page = self._page(page=number, search=f"{field} in [{chunk}]", sort=None)
                sink(page.records, None)
                if not page.has_next or len(page.records) < self.page_size:
                    break
                number += 1
