"""What every backend offers the API: a dialect, parameterised queries, table names, health."""

from typing import Protocol

from sqlglot import exp

from graphql_odata.schema import EntitySet


class BackendUnavailable(RuntimeError):
    """Nothing to serve yet, or the backend cannot be reached (503)."""


class QueryRejected(ValueError):
    """The backend could not evaluate a well-formed query on the data (an overflow, a bad conversion): a 400."""


class Backend(Protocol):
    dialect: str

    def stores_documents(self, entity: EntitySet) -> bool: ...

    def query(self, sql: str, parameters: dict | None = None) -> tuple[list[str], list[tuple]]: ...

    def table(self, entity: EntitySet) -> exp.Table: ...

    def health(self) -> dict: ...
