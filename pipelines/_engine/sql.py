"""Spark SQL bodies for DuckDB, through sqlglot: `EmbeddedDuckDB` writes what `SparkSql` read.

Each gap in sqlglot's own translation is one entry here, with a parity test.
"""

import json
from collections import defaultdict
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB

from pipelines._engine.sql_text import RelationNamer
from pipelines.spark_sql import SparkSql, SqlError, qualified_name, references


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
    parsed every listing, a long text, twice. Types without a structure are cast."""
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


def to_duckdb(tree: exp.Query, relation: RelationNamer) -> str:
    """Render a body for DuckDB, pointing each dataset reference at the relation the engine prepared.

    Rendered once per body and naming: the largest bodies took longer to render than to run on a
    small increment."""
    reads, streams = references(tree)
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
            replacement = exp.to_table(relation(qualified_name(table), True))
            if alias is not None:
                replacement.set("alias", alias.copy())
            return replacement
        if isinstance(node, exp.Table) and node.db and not isinstance(node.parent, exp.Stream):
            replacement = exp.to_table(relation(qualified_name(node), False))
            if node.args.get("alias") is not None:
                replacement.set("alias", node.args["alias"].copy())
            return replacement
        return node

    return _extract_json_once(tree.transform(rewrite)).sql(dialect=EmbeddedDuckDB)


def _extract_json_once(tree: exp.Query) -> exp.Query:
    """Make the `get_json_object` calls of one SELECT on one text items of a single extraction of all
    their paths, which DuckDB computes once for the row (a shared subexpression): bronze reads a
    listing's key and modification time in one parse of its long text, not two.
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
