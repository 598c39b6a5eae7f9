"""Checked queries to SQL for a backend's dialect, with sqlglot: a page, a count, an expansion.

Every identifier comes from the entity model and is quoted; every value is a bound parameter.
Trees are built in place (`copy=False`: sqlglot's builders otherwise copy the whole tree at each
step, which took much of rendering a page's SQL) and rendered in place too (`_render`); every
node is new to its request (backends build a new table node per call), so nothing is shared
between trees or threads.
Order is total (requested order, then the key) with OData's null order: nulls first ascending,
last descending.
"""

import functools
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlglot import exp

from graphql_odata.odata.filter import FilterCompiler, Parameters
from graphql_odata.odata.query import CollectionQuery, OrderTerm
from graphql_odata.schema import EntitySet

PARENT_COLUMN = "__parent"
ROW_COLUMN = "__row"


def column(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _render(tree: exp.Expression, dialect: str) -> str:
    """The SQL of a tree built for this request alone. sqlglot copies the tree before rendering unless
    told not to: the copy took a large share of the CPU rendering took (for a page, and for the
    `$expand` lookup of its parents)."""
    return tree.sql(dialect=dialect, copy=False)


def _ordering(order: Sequence[OrderTerm]) -> list[exp.Ordered]:
    return [exp.Ordered(this=column(t.field), desc=t.descending, nulls_first=not t.descending) for t in order]


Tables = Callable[[EntitySet], exp.Table]
"""The backend's table of an entity set (filters on related records read them)."""


def _where(
    query: CollectionQuery, parameters: Parameters, now: datetime | None, tables: Tables | None
) -> list[exp.Expression]:
    if query.filter is None:
        return []
    return [FilterCompiler(query.entity, parameters, now=now, tables=tables).condition(query.filter)]


def after_row(order: Sequence[OrderTerm], values: Sequence[object], parameters: Parameters) -> exp.Expression:
    """Rows strictly after `values` in `order`: the keyset condition of the next page."""
    condition: exp.Expression = exp.false()
    for term, value in reversed(list(zip(order, values, strict=True))):
        field = column(term.field)
        if value is None:
            same = exp.Is(this=field, expression=exp.Null())
            beyond = exp.false() if term.descending else exp.Not(this=same.copy())
        else:
            bound = parameters.bind(value)
            same = exp.EQ(this=field, expression=bound)
            if term.descending:
                beyond = exp.Or(
                    this=exp.LT(this=field, expression=bound.copy()),
                    expression=exp.Is(this=field.copy(), expression=exp.Null()),
                )
            else:
                beyond = exp.GT(this=field, expression=bound.copy())
        condition = exp.or_(exp.paren(beyond), exp.and_(same, exp.paren(condition)))
    return condition


def page_sql(
    query: CollectionQuery,
    table: exp.Table,
    *,
    dialect: str,
    size: int,
    after: Sequence[object] | None = None,
    now: datetime | None = None,
    also: Sequence[str] = (),
    tables: Tables | None = None,
) -> tuple[str, dict]:
    """The sort values (key included) and the `also` columns of one page's rows, plus one row more if
    another page follows.

    Narrow on purpose (ordering wide rows took many times as long as ordering their keys): whole
    rows are read afterwards by key, or where their stored documents lie comes along in `also`."""
    parameters = Parameters()
    conditions = _where(query, parameters, now, tables)
    if after is not None:
        conditions.append(after_row(query.order, after, parameters))
    selected = dict.fromkeys([*(term.field for term in query.order), *also])
    tree = exp.select(*(column(name) for name in selected)).from_(table)
    if conditions:
        tree = tree.where(exp.and_(*conditions, copy=False), copy=False)
    tree = tree.order_by(*_ordering(query.order), copy=False).limit(size + 1, copy=False)
    if query.skip and after is None:
        tree = tree.offset(query.skip, copy=False)
    return _render(tree, dialect), parameters.values


def rows_sql(
    table: exp.Table, by: str, values: Sequence[object], columns: Sequence[str], *, dialect: str
) -> tuple[str, dict]:
    """`columns` of the rows whose `by` column is one of `values`."""
    sql = _rows_sql_text(table, by, len(values), tuple(columns), dialect)
    return sql, {f"p{index}": value for index, value in enumerate(values)}


@functools.lru_cache(maxsize=1024)
def _rows_sql_text(table: exp.Table, by: str, count: int, columns: tuple[str, ...], dialect: str) -> str:
    """The text of `rows_sql`, which depends only on its shape: rendering it took longer than a key lookup."""
    parameters = Parameters()
    bound = [parameters.bind(None) for _ in range(count)]
    # One value as `=`: DuckDB plans `IN ($p0)` more slowly, which slows a key read noticeably.
    matches = exp.EQ(this=column(by), expression=bound[0]) if count == 1 else exp.In(this=column(by), expressions=bound)
    tree = exp.select(*(column(name) for name in columns)).from_(table).where(matches)
    return tree.sql(dialect=dialect)


def range_sql(
    table: exp.Table, by: str, low: object, high: object, columns: Sequence[str], *, limit: int, dialect: str
) -> tuple[str, dict]:
    """`columns` of at most `limit` rows whose `by` lies between `low` and `high` (contiguous when the
    table is stored in `by` order: cheaper than a long key list)."""
    parameters = Parameters()
    between = exp.Between(this=column(by), low=parameters.bind(low), high=parameters.bind(high))
    tree = (
        exp.select(*(column(name) for name in columns)).from_(table).where(between, copy=False).limit(limit, copy=False)
    )
    return _render(tree, dialect), parameters.values


def count_sql(
    query: CollectionQuery,
    table: exp.Table,
    *,
    dialect: str,
    now: datetime | None = None,
    tables: Tables | None = None,
) -> tuple[str, dict]:
    parameters = Parameters()
    tree = exp.select(exp.Count(this=exp.Star()).as_("count")).from_(table)
    conditions = _where(query, parameters, now, tables)
    if conditions:
        tree = tree.where(conditions[0], copy=False)
    return _render(tree, dialect), parameters.values


def related_sql(
    query: CollectionQuery,
    table: exp.Table,
    remote: str,
    parents: Sequence[object],
    columns: Sequence[str],
    *,
    dialect: str,
    now: datetime | None = None,
    tables: Tables | None = None,
) -> tuple[str, dict]:
    """`columns` of the related rows of a page's `parents`, each with its parent, in order per parent
    (nested `$filter`, `$orderby`, `$skip`, `$top` applied per parent)."""
    parameters = Parameters()
    keys = exp.In(this=column(remote), expressions=[parameters.bind(value) for value in parents])
    conditions = [keys, *_where(query, parameters, now, tables)]
    if query.top is None and not query.skip:
        tree = (
            exp.select(*(column(name) for name in columns), column(remote).as_(PARENT_COLUMN, quoted=True))
            .from_(table)
            .where(exp.and_(*conditions, copy=False), copy=False)
            .order_by(column(remote), *_ordering(query.order), copy=False)
        )
        return _render(tree, dialect), parameters.values
    numbered = exp.Window(
        this=exp.RowNumber(), partition_by=[column(remote)], order=exp.Order(expressions=_ordering(query.order))
    )
    inner = (
        exp.select(
            *(column(name) for name in columns),
            column(remote).as_(PARENT_COLUMN, quoted=True),
            exp.alias_(numbered, ROW_COLUMN, quoted=True),
        )
        .from_(table)
        .where(exp.and_(*conditions, copy=False), copy=False)
    )
    row = column(ROW_COLUMN)
    window = [exp.GT(this=row, expression=exp.Literal.number(query.skip))]
    if query.top is not None:
        window.append(exp.LTE(this=row.copy(), expression=exp.Literal.number(query.skip + query.top)))
    tree = (
        exp.select(*(column(name) for name in columns), column(PARENT_COLUMN))
        .from_(inner.subquery("related", copy=False), copy=False)
        .where(exp.and_(*window, copy=False), copy=False)
        .order_by(column(PARENT_COLUMN), column(ROW_COLUMN), copy=False)
    )
    return _render(tree, dialect), parameters.values
