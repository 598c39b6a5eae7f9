"""Gold on a Databricks SQL warehouse, through `databricks-sql-connector` with named parameter markers.

The query compiler renders Databricks SQL (`:p0` markers, sent beside the text as native
parameters), so values never become SQL text here either. One connection per serving thread.
"""

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from sqlglot import exp

from graphql_odata.backends.base import REJECTIONS, BackendUnavailable, QueryRejected
from graphql_odata.schema import EntitySet

Connect = Callable[[], object]
DATA_ERROR_MARKERS = {
    "ARITHMETIC_OVERFLOW": "overflow",
    "NUMERIC_VALUE_OUT_OF_RANGE": "overflow",
    "CAST_INVALID_INPUT": "conversion",
    "DIVIDE_BY_ZERO": "division",
}
"""Spark's error classes about the data a query met, by the rejection each is."""


def warehouse_connector(host: str, http_path: str, token: str | None) -> Connect:
    """A function opening a connection to the warehouse (the connector is the `databricks` extra):
    with the token, or without one the Databricks SDK's credentials (a Databricks App's service
    principal), looked up now so that a server with none does not start (a secret the workspace
    refuses shows at the first query, as the warehouse being unreachable does)."""
    try:
        from databricks import sql
    except ImportError:
        raise BackendUnavailable(
            "the Databricks backend needs databricks-sql-connector: pip install 'mls2[databricks]'"
        ) from None
    hostname = host.removeprefix("https://").rstrip("/")
    credentials = {"access_token": token} if token else {"credentials_provider": sdk_credentials(host)}
    return lambda: sql.connect(
        server_hostname=hostname, http_path=http_path, session_configuration={"TIMEZONE": "UTC"}, **credentials
    )


def sdk_credentials(host: str) -> Callable[[], Callable[[], dict[str, str]]]:
    """The connector's `credentials_provider` from the SDK's unified authentication (OAuth for a
    service principal from DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET, a profile, ...)."""
    try:
        from databricks.sdk.core import Config
    except ImportError:
        raise BackendUnavailable("without DATABRICKS_TOKEN the Databricks backend needs databricks-sdk") from None
    try:
        config = Config(host=host)
    except ValueError as error:
        raise BackendUnavailable(
            f"no DATABRICKS_TOKEN and no other Databricks credentials for {host}: {error}"
        ) from None
    return lambda: config.authenticate


def _plain(value: object) -> object:
    """A warehouse value as the snapshot gives it: timestamps in UTC with their zone, arrays as lists."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


class DatabricksBackend:
    dialect = "databricks"

    def __init__(self, connect: Connect, schema: str) -> None:
        """`schema` is where gold lives, `catalog.schema` (for example `main.reso_gold`)."""
        self._connect = connect
        self.schema = schema
        self._local = threading.local()

    def _connection(self):
        connection = getattr(self._local, "connection", None)
        if connection is None:
            try:
                connection = self._local.connection = self._connect()
            except Exception as error:  # the connector raises many kinds; all mean "cannot reach it"
                raise BackendUnavailable(f"cannot reach the Databricks SQL warehouse: {error}") from None
        return connection

    def query(
        self, sql: str, parameters: dict | None = None, documents: str | None = None
    ) -> tuple[list[str], list[tuple]]:
        """Rows of `sql` (the warehouse stores no documents: `documents` is never asked of it)."""
        cursor = self._connection().cursor()
        try:
            cursor.execute(sql, parameters or {})
            columns = [column[0] for column in cursor.description]
            return columns, [tuple(_plain(value) for value in row) for row in cursor.fetchall()]
        except Exception as error:
            message = str(error)
            kind = next((kind for marker, kind in DATA_ERROR_MARKERS.items() if marker in message), None)
            if kind is not None:
                raise QueryRejected(REJECTIONS[kind]) from None
            self._local.connection = None
            raise
        finally:
            cursor.close()

    def stores_documents(self, entity: EntitySet) -> bool:
        return False

    def documents_by_key(self, entity: EntitySet) -> None:
        return None

    def document_runs(self, entity: EntitySet, column: str) -> None:
        return None

    def table(self, entity: EntitySet) -> exp.Table:
        return exp.to_table(f"{self.schema}.{entity.table_name}", dialect="databricks")

    def health(self) -> dict:
        self.query("SELECT 1")
        return {"backend": "databricks", "schema": self.schema}
