"""Spark SQL (the Databricks dialect) to DuckDB, through sqlglot.

`SparkSql` reads the pipeline's bodies; `EmbeddedDuckDB` writes them for the embedded
engine. Each gap in sqlglot's own translation is one entry here, with a parity test.
"""

import json
import re
from collections import defaultdict
from collections.abc import Callable
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.dialects.databricks import Databricks
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.tokens import TokenType

LANDING_SCHEMA = "landing"
"""Pseudo-schema of the landing relations bronze reads: `STREAM(landing.properties)`."""


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


def _parsed_or_null(text: exp.Expression, function: str, *arguments: exp.Expression) -> exp.Expression:
    """The JSON `function` of `text` (then `arguments`), NULL where `text` is not JSON, as Spark's JSON
    functions give. A column is parsed once, under `try` (errors become NULL row by row); any other
    expression is cast to JSON first (`try` refuses volatile functions, and a cast evaluates it once)."""
    if isinstance(text, exp.Column):
        parse = exp.Anonymous(this=function, expressions=[text.copy(), *arguments])
        return exp.Anonymous(this="try", expressions=[parse])
    as_json = exp.TryCast(this=text.copy(), to=exp.DataType.build("JSON"))
    return exp.Anonymous(this=function, expressions=[as_json, *arguments])


def _json_structure(kind: exp.DataType) -> object | None:
    """`kind` as a `json_transform` structure (objects for structs, one-item lists for arrays, type
    names for the rest); None when a part has no such form (a map)."""
    if kind.this == exp.DataType.Type.STRUCT:
        fields = {field.name: _json_structure(field.args["kind"]) for field in kind.expressions}
        return None if None in fields.values() else fields
    if kind.this == exp.DataType.Type.ARRAY:
        item = _json_structure(kind.expressions[0])
        return None if item is None else [item]
    if kind.this == exp.DataType.Type.MAP or any(isinstance(part, exp.DataType) for part in kind.expressions):
        return None
    return kind.sql(dialect=DuckDB)


def _from_json(generator: DuckDB.Generator, expression: exp.FromJson) -> str:
    """Spark's `from_json(text, 'struct<...>')`: text that is not JSON, or a field of another type, gives NULL.

    Read by `json_transform`, which parses the text once; casting it to JSON and then to the type
    parsed a 27 KB listing twice (7.8 -> 6.4 s for 100,000). Types without a structure are cast."""
    schema = expression.expression
    if not isinstance(schema, exp.Literal) or not schema.is_string:
        raise SqlError("from_json needs its schema as a string literal (a Spark DDL type, e.g. 'struct<id:string>')")
    target = exp.DataType.build(schema.this, dialect=SparkSql)
    structure = _json_structure(target)
    if structure is None:
        as_json = exp.TryCast(this=expression.this, to=exp.DataType.build("JSON"))
        return generator.sql(exp.TryCast(this=as_json, to=target))
    return generator.sql(_parsed_or_null(expression.this, "json_transform", exp.Literal.string(json.dumps(structure))))


class EmbeddedDuckDB(DuckDB):
    class Generator(DuckDB.Generator):
        TRANSFORMS = {**DuckDB.Generator.TRANSFORMS, exp.FromJson: _from_json}

        def jsonextractscalar_sql(self, expression: exp.JSONExtractScalar) -> str:
            """Spark's `get_json_object` gives NULL on text that is not JSON; DuckDB's `->>` raises."""
            return self.sql(_parsed_or_null(expression.this, "json_extract_string", expression.expression.copy()))


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


def _qualified(table: exp.Table) -> str:
    return f"{table.db}.{table.name}" if table.db else table.name


def references(tree: exp.Query) -> tuple[set[str], set[str]]:
    """The datasets a body reads: (whole reads, incremental `STREAM(...)` reads), as `schema.table`."""
    reads, streams = _references(tree)
    return set(reads), set(streams)


@lru_cache(maxsize=512)
def _references(tree: exp.Query) -> tuple[frozenset[str], frozenset[str]]:
    streamed = {_qualified(table) for stream in tree.find_all(exp.Stream) for table in stream.find_all(exp.Table)}
    every = {_qualified(table) for table in tree.find_all(exp.Table) if table.db}
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
    return _qualified(tables[0]) if len(tables) == 1 else None


WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def table_references(sql: str, *, origin: str) -> tuple[set[str], set[str]]:
    """`references` from the tokens alone: the `schema.table` names after FROM, JOIN or `STREAM(`.

    Graph building needs only the names a body reads; tokenizing is many times faster than
    parsing, and a body is parsed only when its flow runs. A test keeps both in agreement.
    """
    try:
        tokens = SparkSql().tokenize(sql)
    except sqlglot.errors.TokenError as error:
        raise SqlError(f"{origin}: Spark SQL does not tokenize: {error}") from None
    reads: set[str] = set()
    streams: set[str] = set()
    kinds = [token.token_type for token in tokens]
    # A name part may tokenize as a keyword (`reso_gold.first`): any word or quoted identifier counts.
    named = [
        kind == TokenType.IDENTIFIER or WORD.fullmatch(token.text) is not None
        for kind, token in zip(kinds, tokens, strict=True)
    ]
    for i in range(1, len(tokens) - 2):
        if not (named[i] and kinds[i + 1] == TokenType.DOT and named[i + 2]):
            continue
        if i + 3 < len(tokens) and kinds[i + 3] == TokenType.DOT:
            continue
        name = f"{tokens[i].text}.{tokens[i + 2].text}"
        if kinds[i - 1] in (TokenType.FROM, TokenType.JOIN):
            reads.add(name)
        elif kinds[i - 1] == TokenType.L_PAREN and i >= 2 and kinds[i - 2] == TokenType.STREAM:
            streams.add(name)
    return reads - streams, streams


def string_literal(text: str) -> str:
    """`text` as a SQL string literal (single quotes doubled), for places DuckDB takes no parameters."""
    return "'" + text.replace("'", "''") + "'"


RelationNamer = Callable[[str, bool], str]
"""Maps (`schema.table`, is a STREAM read) to the DuckDB relation that holds its rows."""


def to_duckdb(tree: exp.Query, relation: RelationNamer) -> str:
    """Render a body for DuckDB, pointing each dataset reference at the relation the engine prepared.

    Rendered once per body and naming: the largest bodies took longer to render than to run on a
    small increment."""
    reads, streams = _references(tree)
    names = tuple(sorted((name, False, relation(name, False)) for name in reads)) + tuple(
        sorted((name, True, relation(name, True)) for name in streams)
    )
    return _render(tree, names)


@lru_cache(maxsize=512)
def _render(tree: exp.Query, names: tuple[tuple[str, bool, str], ...]) -> str:
    chosen = {(name, streaming): target for name, streaming, target in names}

    def relation(name: str, streaming: bool) -> str:
        return chosen[(name, streaming)]

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Stream):
            inner = node.this
            table = inner.this if isinstance(inner, exp.Subquery) else inner
            alias = inner.args.get("alias") or table.args.get("alias")
            replacement = exp.to_table(relation(_qualified(table), True))
            if alias is not None:
                replacement.set("alias", alias.copy())
            return replacement
        if isinstance(node, exp.Table) and node.db and not isinstance(node.parent, exp.Stream):
            replacement = exp.to_table(relation(_qualified(node), False))
            if node.args.get("alias") is not None:
                replacement.set("alias", node.args["alias"].copy())
            return replacement
        return node

    return _extract_json_once(tree.transform(rewrite)).sql(dialect=EmbeddedDuckDB)


def _extract_json_once(tree: exp.Query) -> exp.Query:
    """Make the `get_json_object` calls of one SELECT on one text items of a single extraction of all
    their paths, which DuckDB computes once for the row (a shared subexpression): bronze reads a
    27 KB listing's key and modification time in one parse, not two (4.7 -> 2.9 s for 100,000).
    Paths with wildcards keep their own call (their value is a list of matches)."""
    calls: dict[tuple[int, str], list[exp.JSONExtractScalar]] = defaultdict(list)
    for call in tree.find_all(exp.JSONExtractScalar):
        path = call.expression
        if isinstance(path, exp.JSONPath) and not any(
            isinstance(part, (exp.JSONPathWildcard, exp.JSONPathSlice, exp.JSONPathUnion, exp.JSONPathRecursive))
            for part in path.find_all(exp.JSONPathPart)
        ):
            calls[(id(call.parent_select), call.this.sql())].append(call)
    for group in calls.values():
        paths = {call.expression.sql(dialect=EmbeddedDuckDB): call.expression for call in group}
        if len(paths) < 2:
            continue
        listed = exp.Array(expressions=[path.copy() for path in paths.values()])
        positions = {rendered: index for index, rendered in enumerate(paths, start=1)}
        for call in group:
            extract = _parsed_or_null(call.this, "json_extract_string", listed.copy())
            position = exp.Literal.number(positions[call.expression.sql(dialect=EmbeddedDuckDB)])
            call.replace(exp.Anonymous(this="list_extract", expressions=[extract, position]))
    return tree


@lru_cache(maxsize=4096)
def spark_to_duckdb_expression(sql: str) -> str:
    """A single Spark SQL expression (an expectation's constraint, a CDC condition) for DuckDB."""
    try:
        return sqlglot.parse_one(sql, dialect=SparkSql).sql(dialect=EmbeddedDuckDB)
    except sqlglot.errors.ParseError as error:
        raise SqlError(f"expression does not parse as Spark SQL: {sql!r}: {error}") from None
