"""What every backend offers the API: a dialect, parameterised queries, table names, health."""

from collections.abc import Callable
from typing import Protocol

from sqlglot import exp

from graphql_odata.schema import EntitySet


class BackendUnavailable(RuntimeError):
    """Nothing to serve yet, or the backend cannot be reached (503)."""


class QueryRejected(ValueError):
    """The backend could not evaluate a well-formed query on the data (an overflow, a bad conversion): a 400.

    Its message is one of `REJECTIONS`, the same on every backend: an engine's own text names its
    internals and settings, which mean nothing to a client."""


REJECTIONS = {
    "overflow": "a computed number is out of range for its type",
    "conversion": "a value does not convert to the type it is compared or computed with",
    "division": "a division by zero",
    "value": "a value the query cannot be evaluated on",
}


class Backend(Protocol):
    dialect: str

    def stores_documents(self, entity: EntitySet) -> bool: ...

    def query(
        self, sql: str, parameters: dict | None = None, documents: str | None = None
    ) -> tuple[list[str], list[tuple]]:
        """Rows of `sql`. With `documents` (a table `stores_documents` is true of), the result's
        `__document_at` and `__document_size` come back as one column `__document`: the rows'
        stored OData JSON (None where the place is NULL), read from the same snapshot as the rows."""
        ...

    def documents_by_key(self, entity: EntitySet) -> Callable[[str], bytes | None] | None:
        """Where a backend stores the entity's documents with an index of their keys: a lookup of one
        record's stored OData JSON by key (None when there is no such record)."""
        ...

    def document_runs(self, entity: EntitySet, column: str) -> Callable[[list], dict[object, bytes | None]] | None:
        """Where a backend stores the entity's documents in one run per `column` value: a lookup of
        the runs of some values (the records' JSON objects, comma-separated; None for a run not in
        one piece; a value no record has left out)."""
        ...

    def table(self, entity: EntitySet) -> exp.Table: ...

    def health(self) -> dict: ...
