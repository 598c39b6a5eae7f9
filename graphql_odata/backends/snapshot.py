"""The embedded backend: the DuckDB snapshot the pipeline published, re-opened when a new one lands."""

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson
from sqlglot import exp

from graphql_odata.backends.base import REJECTIONS, BackendUnavailable, QueryRejected
from graphql_odata.schema import EntitySet
from pipelines.snapshot import (
    DOCUMENT_AT,
    DOCUMENT_COLUMN,
    DOCUMENT_SIZE,
    DocumentFiles,
    DocumentPlaces,
    SnapshotLayoutError,
    open_documents,
    open_places,
    open_snapshot,
    served_catalog,
)

DATA_ERRORS = {
    duckdb.OutOfRangeException: "overflow",
    duckdb.ConversionException: "conversion",
    duckdb.InvalidInputException: "value",
}
"""DuckDB's errors about the data a query met (not its own defects), by the rejection each is."""


def _rejection(error: duckdb.Error) -> QueryRejected:
    if "division by zero" in str(error).lower():
        return QueryRejected(REJECTIONS["division"])
    return QueryRejected(REJECTIONS[next(kind for cls, kind in DATA_ERRORS.items() if isinstance(error, cls))])


@contextmanager
def _places_read() -> Iterator[None]:
    """A places index that cannot be read (damaged, or removed before this thread first opened it,
    two publishes on) is the snapshot unavailable, not a server error."""
    try:
        yield
    except sqlite3.Error as error:
        raise BackendUnavailable(f"the published snapshot's places index cannot be read: {error}") from None


class SnapshotBackend:
    """Serves queries from the snapshot named by `CURRENT.json`, swapping to a new one between queries.

    Each query runs on its own cursor of a read-only connection, so requests run in parallel;
    a query in flight keeps the old snapshot's connection alive until it finishes.
    """

    dialect = "duckdb"

    def __init__(self, pointer: Path) -> None:
        self.pointer_path = Path(pointer)
        self.snapshots = self.pointer_path.parent
        self._lock = threading.Lock()
        self._stamp: int | None = None
        self._served: tuple[duckdb.DuckDBPyConnection, DocumentFiles, DocumentPlaces] | None = None
        self._documented: frozenset[str] = frozenset()
        """The served snapshot's tables that store documents."""
        self.pointer: dict | None = None

    def _current(self) -> tuple[duckdb.DuckDBPyConnection, DocumentFiles, DocumentPlaces]:
        """The snapshot's connection, documents and places, as one: a query reads all from the same snapshot."""
        try:
            stamp = self.pointer_path.stat().st_mtime_ns
        except FileNotFoundError:
            raise BackendUnavailable(
                f"no published snapshot in {self.snapshots}; run `mls2 pipeline run` first"
            ) from None
        with self._lock:
            if stamp != self._stamp or self._served is None:
                pointer = orjson.loads(self.pointer_path.read_bytes())
                try:
                    connection = open_snapshot(self.snapshots, pointer)
                except (FileNotFoundError, SnapshotLayoutError, duckdb.IOException) as error:
                    raise BackendUnavailable(f"the published snapshot cannot be opened: {error}") from None
                try:
                    documents = open_documents(connection, self.snapshots, pointer)
                except (OSError, duckdb.Error) as error:
                    connection.close()
                    raise BackendUnavailable(f"the published snapshot's documents cannot be read: {error}") from None
                places = open_places(self.snapshots, pointer)
                stored = connection.execute(
                    "SELECT table_name FROM information_schema.columns WHERE column_name = ?", [DOCUMENT_AT]
                ).fetchall()
                self._served = connection, documents, places
                self._documented = frozenset(row[0] for row in stored if row[0] in documents)
                self._stamp, self.pointer = stamp, pointer
            return self._served

    def query(
        self, sql: str, parameters: dict | None = None, documents: str | None = None
    ) -> tuple[list[str], list[tuple]]:
        connection, files, _ = self._current()
        cursor = connection.cursor()
        try:
            cursor.execute(sql, parameters or {})
            columns = [column[0] for column in cursor.description]
            rows = cursor.fetchall()
        except tuple(DATA_ERRORS) as error:
            raise _rejection(error) from None
        finally:
            cursor.close()
        if documents is None:
            return columns, rows
        at, size = columns.index(DOCUMENT_AT), columns.index(DOCUMENT_SIZE)
        others = [i for i in range(len(columns)) if i not in (at, size)]
        return [DOCUMENT_COLUMN, *(columns[i] for i in others)], [
            (None if row[at] is None else files.read(documents, row[at], row[size]), *(row[i] for i in others))
            for row in rows
        ]

    def stores_documents(self, entity: EntitySet) -> bool:
        """Whether the snapshot keeps this entity's rows as OData JSON too (in its documents file)."""
        self._current()
        return entity.table_name in self._documented

    def documents_by_key(self, entity: EntitySet) -> Callable[[str], bytes | None] | None:
        """A lookup of the entity's stored documents by key (None for no such row), on the snapshot
        served now, when it keeps an index of their places (see `places`); else None. The lookup holds
        the snapshot whole, its connection too: its files stay attached while the lookup is in use,
        so no publish patches them in place under it (see `publish`)."""
        served = self._current()
        _, files, places = served
        table = entity.table_name
        if table not in files or table not in places:
            return None

        def document(key: str) -> bytes | None:
            _, files, places = served
            with _places_read():
                place = places.place(table, key)
            return None if place is None else files.read(table, *place)

        return document

    def document_runs(self, entity: EntitySet, column: str) -> Callable[[list], dict[object, bytes | None]] | None:
        """A lookup of the runs of documents of the entity's rows sharing a `column` value, on the
        snapshot served now, when its places index keeps them: each value asked for that rows have,
        with its run (None for a run not in one piece). Else None. Like `documents_by_key`'s, the
        lookup holds the snapshot whole."""
        served = self._current()
        _, files, places = served
        table = entity.table_name
        if table not in files or table not in places:
            return None
        with _places_read():
            if places.runs_column(table) != column:
                return None

        def runs(values: list) -> dict[object, bytes | None]:
            _, files, places = served
            with _places_read():
                found = places.runs(table, values)
            return {value: None if at is None else files.read(table, at, size) for value, at, size in found}

        return runs

    def table(self, entity: EntitySet) -> exp.Table:
        return exp.table_(entity.table_name, db="main", catalog=served_catalog(entity.table_name), quoted=True)

    def health(self) -> dict:
        self._current()
        published = datetime.fromisoformat(self.pointer["published_at"])
        return {
            "backend": "snapshot",
            "tables": sorted(self.pointer["files"]),
            "update_id": self.pointer["update_id"],
            "published_at": self.pointer["published_at"],
            "age_seconds": round((datetime.now(UTC) - published).total_seconds(), 1),
        }
