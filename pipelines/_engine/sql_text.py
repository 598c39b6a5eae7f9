"""DuckDB SQL text the engine writes itself (identifiers, string literals) and the shapes of what
translates Spark SQL for it, without a SQL parser: an update whose bodies and expressions are
already translated (`compiled`) never imports sqlglot."""

from collections.abc import Callable


def quote(name: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def string_literal(text: str) -> str:
    """`text` as a SQL string literal (single quotes doubled), for places DuckDB takes no parameters."""
    return "'" + text.replace("'", "''") + "'"


RelationNamer = Callable[[str, bool], str]
"""Maps (`schema.table`, is a STREAM read) to the DuckDB relation that holds its rows."""

Translate = Callable[[str], str]
"""Renders a Spark SQL expression of the declaration (an expectation's constraint, a CDC condition) for
DuckDB (`CompiledBodies.expression`)."""
