"""Running checked queries on a backend, keys first: a narrow query finds the page's keys in order,
then the rows of those keys are read (as one range where they are stored side by side); where the
backend stores whole records as documents, that query finds where the page's documents lie
instead, and they are read from there. Related rows of `$expand` come for the whole page at once: as
each parent's run of stored documents (found in the backend's index of them, without a query) when
they are asked for whole and in key order, else in one query per navigation, row by row."""

from dataclasses import dataclass
from datetime import UTC, datetime

from conf.mappings import Navigation
from graphql_odata.backends.base import Backend
from graphql_odata.odata.query import CollectionQuery, OrderTerm
from graphql_odata.odata.sql import PARENT_COLUMN, count_sql, page_sql, range_sql, related_sql, rows_sql
from graphql_odata.odata.wire import Document
from pipelines.snapshot import DOCUMENT_AT, DOCUMENT_COLUMN, DOCUMENT_SIZE

RANGE_READ_FACTOR = 10


@dataclass(frozen=True)
class Page:
    rows: list[dict | Document]
    last: dict | None
    """The sort values of the page's last row, when another page follows."""
    heads: list[dict]
    """The sort values (key included) of every row asked for, in order (a row gone between the
    reads of a page is in `heads` but not in `rows`)."""


def _records(columns: list[str], rows: list[tuple]) -> list[dict]:
    return [dict(zip(columns, row, strict=True)) for row in rows]


def _stored(backend: Backend, query: CollectionQuery) -> bool:
    """Whether whole records of `query` are read as the documents the backend stores."""
    return query.reads_documents and backend.stores_documents(query.entity)


def _columns(backend: Backend, query: CollectionQuery, *also: str) -> list[str]:
    """What a record read needs: the selection (or where its stored document lies), the key, what
    expansion follows."""
    wanted = [DOCUMENT_AT, DOCUMENT_SIZE] if _stored(backend, query) else list(query.select)
    return list(dict.fromkeys([*wanted, *also, query.entity.key, *(e.link.local for e in query.expand)]))


def _read_records(
    backend: Backend, query: CollectionQuery, columns: list[str], sql: str, parameters: dict
) -> list[dict]:
    """Records of `query.entity` that `sql` reads (selecting `columns`, from `_columns`), with their
    stored documents when `columns` place them."""
    documents = query.entity.table_name if DOCUMENT_AT in columns else None
    return _records(*backend.query(sql, parameters, documents=documents))


def _rows_by(backend: Backend, query: CollectionQuery, by: str, values: list) -> list[dict]:
    """Rows of `query.entity` whose `by` is one of `values`."""
    if not values:
        return []
    columns = _columns(backend, query, by)
    sql, parameters = rows_sql(backend.table(query.entity), by, values, columns, dialect=backend.dialect)
    return _read_records(backend, query, columns, sql, parameters)


def read_page(
    backend: Backend, query: CollectionQuery, *, size: int, after: list | None, now: datetime | None = None
) -> Page:
    if size == 0:
        return Page([], None, [])  # `$top=0`: no rows, and no next page (`$count=true&$top=0` asks for the count only)
    now = now or datetime.now(UTC)
    columns = _columns(backend, query)
    stored = columns if DOCUMENT_AT in columns else []
    sql, parameters = page_sql(
        query,
        backend.table(query.entity),
        dialect=backend.dialect,
        size=size,
        after=after,
        now=now,
        also=stored,
        tables=backend.table,
    )
    heads = _read_records(backend, query, stored, sql, parameters)
    more = len(heads) > size
    heads = heads[:size]
    records = heads if stored else _page_rows(backend, query, heads)
    expand(backend, query, records, now)
    return Page([shape(query, r) for r in records], heads[-1] if more else None, heads)


def _page_rows(backend: Backend, query: CollectionQuery, heads: list[dict]) -> list[dict]:
    """The records of a page of selected fields, in the order of `heads`: read as one range where
    `_rows_in_range` can, else by key."""
    key = query.entity.key
    rows = _rows_in_range(backend, query, heads)
    if rows is None:
        rows = _rows_by(backend, query, key, [head[key] for head in heads])
    found = {row[key]: row for row in rows}
    # A key gone between the two reads (a new snapshot swapped in) is simply not served.
    return [found[head[key]] for head in heads if head[key] in found]


def _rows_in_range(backend: Backend, query: CollectionQuery, heads: list[dict]) -> list[dict] | None:
    """In modification order (replication, recent first), the rows the snapshot stores side by side
    from the page's first to its last, which hold the page (reading a replication page so is faster
    than by key); None when that is not the order, or the range holds far more rows than the page."""
    first = query.order[0].field
    stamps = [head[first] for head in heads]
    if not heads or first != query.entity.timestamp_field or None in stamps:
        return None
    if not backend.stores_documents(query.entity):
        return None
    limit = RANGE_READ_FACTOR * len(heads) + 1
    columns = _columns(backend, query, first)
    sql, parameters = range_sql(
        backend.table(query.entity), first, min(stamps), max(stamps), columns, limit=limit, dialect=backend.dialect
    )
    rows = _read_records(backend, query, columns, sql, parameters)
    return rows if len(rows) < limit else None


def read_count(backend: Backend, query: CollectionQuery, now: datetime | None = None) -> int:
    sql, parameters = count_sql(
        query, backend.table(query.entity), dialect=backend.dialect, now=now, tables=backend.table
    )
    _, rows = backend.query(sql, parameters)
    return int(rows[0][0])


def read_entity(
    backend: Backend, query: CollectionQuery, key: str, now: datetime | None = None
) -> dict | Document | None:
    # Whole records only; the backend says whether it stores them (asking `_stored` too would look
    # for the served snapshot twice per lookup).
    by_key = backend.documents_by_key(query.entity) if query.reads_documents and not query.expand else None
    if by_key is not None:
        document = by_key(key)
        return None if document is None else Document(document)
    records = _rows_by(backend, query, query.entity.key, [key])
    if not records:
        return None
    expand(backend, query, records, now or datetime.now(UTC))
    return shape(query, records[0])


def expand(backend: Backend, query: CollectionQuery, records: list[dict], now: datetime) -> None:
    """Attach each `$expand` item to `records`: one lookup per navigation for the whole page."""
    for expansion in query.expand:
        link, nested = expansion.link, expansion.query
        parents = sorted({r[link.local] for r in records if r[link.local] is not None})
        runs = _related_runs(backend, link, nested, parents) if parents and link.many else None
        if runs is not None:
            for record in records:
                record[link.name] = runs.get(record[link.local], NO_RECORDS)
            continue
        children: list[tuple[object, dict]] = []
        if parents and link.many:
            columns = _columns(backend, nested)
            sql, parameters = related_sql(
                nested,
                backend.table(nested.entity),
                link.remote,
                parents,
                columns,
                dialect=backend.dialect,
                now=now,
                tables=backend.table,
            )
            children = [(row[PARENT_COLUMN], row) for row in _read_records(backend, nested, columns, sql, parameters)]
        elif parents:
            children = [(r[link.remote], r) for r in _rows_by(backend, nested, link.remote, parents)]
        expand(backend, nested, [child for _, child in children], now)
        related: dict[object, list] = {}
        for parent, child in children:
            related.setdefault(parent, []).append(shape(nested, child))
        for record in records:
            found = related.get(record[link.local], [])
            record[link.name] = found if link.many else (found[0] if found else None)


NO_RECORDS = Document(b"[]")


def _related_runs(backend: Backend, link: Navigation, nested: CollectionQuery, parents: list) -> dict | None:
    """Each parent's related records as one JSON array, read from the run of documents the backend
    stores for it (no parent, no run): when they are asked for whole, unfiltered, in key order and
    not expanded further, and every run asked for lies in one piece. Otherwise None."""
    target = nested.entity
    plain = nested.filter is None and nested.top is None and not nested.skip and not nested.expand
    if not (plain and nested.order == (OrderTerm(target.key),) and nested.reads_documents):
        return None
    runs = backend.document_runs(target, link.remote)
    if runs is None:
        return None
    found = runs(parents)
    if any(run is None for run in found.values()):
        return None
    return {parent: Document(b"[" + run + b"]") for parent, run in found.items()}


def shape(query: CollectionQuery, record: dict) -> dict | Document:
    """The record as served: the selected fields (or the stored document), then the expanded navigation."""
    expanded = {e.link.name: record[e.link.name] for e in query.expand}
    if DOCUMENT_COLUMN in record:
        return Document(record[DOCUMENT_COLUMN]).with_fields(expanded)
    return {name: record[name] for name in query.select} | expanded
