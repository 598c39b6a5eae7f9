"""Running checked queries on a backend: pages, counts, single entities, and their expansions."""

from dataclasses import dataclass
from datetime import UTC, datetime

from graphql_odata.backends.base import Backend
from graphql_odata.odata.query import CollectionQuery
from graphql_odata.odata.sql import PARENT_COLUMN, count_sql, expansion_sql, key_sql, page_sql
from graphql_odata.schema import entity_sets


@dataclass(frozen=True)
class Page:
    rows: list[dict]
    last: dict | None
    """The page's last row with its sort values, when another page follows."""


def _records(columns: list[str], rows: list[tuple]) -> list[dict]:
    return [dict(zip(columns, row, strict=True)) for row in rows]


def read_page(
    backend: Backend, query: CollectionQuery, *, size: int, after: list | None, now: datetime | None = None
) -> Page:
    now = now or datetime.now(UTC)
    sql, parameters = page_sql(
        query, backend.table(query.entity), dialect=backend.dialect, size=size, after=after, now=now
    )
    records = _records(*backend.query(sql, parameters))
    more = len(records) > size
    records = records[:size]
    expand(backend, query, records, now)
    return Page([shape(query, r) for r in records], records[-1] if more else None)


def read_count(backend: Backend, query: CollectionQuery, now: datetime | None = None) -> int:
    sql, parameters = count_sql(query, backend.table(query.entity), dialect=backend.dialect, now=now)
    _, rows = backend.query(sql, parameters)
    return int(rows[0][0])


def read_entity(backend: Backend, query: CollectionQuery, key: str, now: datetime | None = None) -> dict | None:
    sql, parameters = key_sql(query, backend.table(query.entity), key, dialect=backend.dialect)
    records = _records(*backend.query(sql, parameters))
    if not records:
        return None
    expand(backend, query, records, now or datetime.now(UTC))
    return shape(query, records[0])


def expand(backend: Backend, query: CollectionQuery, records: list[dict], now: datetime) -> None:
    """Attach each `$expand` item to `records` (keys first: one query per navigation for the whole page)."""
    for expansion in query.expand:
        link, nested = expansion.link, expansion.query
        parents = sorted({r[link.local] for r in records if r[link.local] is not None})
        related: dict[object, list[dict]] = {}
        if parents:
            sql, parameters = expansion_sql(
                nested,
                backend.table(entity_sets()[link.resource]),
                link.remote,
                parents,
                many=link.many,
                dialect=backend.dialect,
                now=now,
            )
            children = _records(*backend.query(sql, parameters))
            expand(backend, nested, children, now)
            for child in children:
                related.setdefault(child[PARENT_COLUMN], []).append(shape(nested, child))
        for record in records:
            found = related.get(record[link.local], [])
            record[link.name] = found if link.many else (found[0] if found else None)


def shape(query: CollectionQuery, record: dict) -> dict:
    """The record as served: the selected fields, then the expanded navigation properties."""
    shaped = {name: record[name] for name in query.select}
    for expansion in query.expand:
        shaped[expansion.link.name] = record[expansion.link.name]
    return shaped
