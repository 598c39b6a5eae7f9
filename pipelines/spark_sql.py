"""Reading the pipeline's Spark SQL (the Databricks dialect) through sqlglot: parsing a body and
naming what it reads. Part of the declaration, shared by every executor; translating a body for
an engine is that engine's business (the embedded engine's is `pipelines._engine.sql`).
"""

import re
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.dialects.databricks import Databricks
from sqlglot.tokens import TokenType


def _to_instant(args: list[exp.Expression], *, safe: bool) -> exp.Expression:
    """Spark's `to_timestamp(s)` yields an instant; keep the offset (DuckDB's TIMESTAMP would drop it)."""
    if len(args) > 1:
        return exp.StrToTime(this=args[0], format=args[1], safe=safe or None)
    cast = exp.TryCast if safe else exp.Cast
    return cast(this=args[0], to=exp.DataType.build("TIMESTAMPTZ"))


class SparkSql(Databricks):
    class Parser(Databricks.Parser):
        FUNCTIONS = {
            **Databricks.Parser.FUNCTIONS,
            "TO_TIMESTAMP": lambda args: _to_instant(args, safe=False),
            "TRY_TO_TIMESTAMP": lambda args: _to_instant(args, safe=True),
        }


class SqlError(ValueError):
    """A SQL body does not parse or references something the graph does not have."""


def parse(sql: str, *, origin: str) -> exp.Query:
    """A dataset body's syntax tree; shared between callers (treat it as read-only)."""
    return _parse(sql, origin)


@lru_cache(maxsize=512)
def _parse(sql: str, origin: str) -> exp.Query:
    try:
        tree = sqlglot.parse_one(sql, dialect=SparkSql)
    except sqlglot.errors.ParseError as error:
        raise SqlError(f"{origin}: Spark SQL does not parse: {error}") from None
    if not isinstance(tree, exp.Query):
        raise SqlError(f"{origin}: a dataset body must be a query (SELECT ...), got {tree.key.upper()}")
    return tree


def qualified_name(table: exp.Table) -> str:
    return f"{table.db}.{table.name}" if table.db else table.name


@lru_cache(maxsize=512)
def references(tree: exp.Query) -> tuple[frozenset[str], frozenset[str]]:
    """The datasets a body reads: (whole reads, incremental `STREAM(...)` reads), as `schema.table`."""
    streamed = {qualified_name(table) for stream in tree.find_all(exp.Stream) for table in stream.find_all(exp.Table)}
    every = {qualified_name(table) for table in tree.find_all(exp.Table) if table.db}
    return frozenset(every - streamed), frozenset(streamed)


def passthrough_stream(tree: exp.Query) -> str | None:
    """The dataset a body only passes on (`SELECT * FROM STREAM(x)`, nothing else), if it is one."""
    if not isinstance(tree, exp.Select) or len(tree.expressions) != 1 or not isinstance(tree.expressions[0], exp.Star):
        return None
    if any(
        tree.args.get(part) for part in ("joins", "where", "group", "having", "qualify", "order", "limit", "distinct")
    ):
        return None
    source = tree.args.get("from_") or tree.args.get("from")
    stream = source.this if source is not None else None
    if not isinstance(stream, exp.Stream):
        return None
    tables = list(stream.find_all(exp.Table))
    return qualified_name(tables[0]) if len(tables) == 1 else None


WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _relations(sql: str, origin: str) -> list[tuple[str, int, int, bool]]:
    """The `schema.table` names after FROM, JOIN or `STREAM(`: (name, first and last character, streamed)."""
    try:
        tokens = SparkSql().tokenize(sql)
    except sqlglot.errors.TokenError as error:
        raise SqlError(f"{origin}: Spark SQL does not tokenize: {error}") from None
    kinds = [token.token_type for token in tokens]
    # A name part may tokenize as a keyword (`reso_gold.first`): any word or quoted identifier counts.
    named = [
        kind == TokenType.IDENTIFIER or WORD.fullmatch(token.text) is not None
        for kind, token in zip(kinds, tokens, strict=True)
    ]
    found = []
    for i in range(1, len(tokens) - 2):
        if not (named[i] and kinds[i + 1] == TokenType.DOT and named[i + 2]):
            continue
        if i + 3 < len(tokens) and kinds[i + 3] == TokenType.DOT:
            continue
        name = f"{tokens[i].text}.{tokens[i + 2].text}"
        if kinds[i - 1] in (TokenType.FROM, TokenType.JOIN):
            found.append((name, tokens[i].start, tokens[i + 2].end, False))
        elif kinds[i - 1] == TokenType.L_PAREN and i >= 2 and kinds[i - 2] == TokenType.STREAM:
            found.append((name, tokens[i].start, tokens[i + 2].end, True))
    return found


def table_references(sql: str, *, origin: str) -> tuple[set[str], set[str]]:
    """`references` from the tokens alone: the `schema.table` names after FROM, JOIN or `STREAM(`.

    Graph building needs only the names a body reads; tokenizing is many times faster than
    parsing, and a body is parsed only when its flow runs. A test keeps both in agreement.
    """
    relations = _relations(sql, origin)
    reads = {name for name, _, _, streamed in relations if not streamed}
    streams = {name for name, _, _, streamed in relations if streamed}
    return reads - streams, streams


def rename_relations(sql: str, names: dict[str, str], *, origin: str) -> str:
    """`sql` with the relations it reads (after FROM, JOIN or `STREAM(`) renamed by `names`; the rest
    of the text, comments and spacing included, as written."""
    renamed, position = [], 0
    for name, first, last, _ in _relations(sql, origin):
        if name in names:
            renamed += [sql[position:first], names[name]]
            position = last + 1
    return "".join(renamed) + sql[position:]
