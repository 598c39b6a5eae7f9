"""GraphQL's `where` (Hasura's shape) as the OData filter tree `$filter` parses to, so one compiler
checks and renders both.

`{ListPrice: {_gt: 100000}, City: {_in: ["Paphos", "Limassol"]}}` is `ListPrice gt 100000 and City
in ('Paphos','Limassol')`. Keys of one object, and operators of one field, all hold together;
`_and`, `_or` and `_not` combine objects; a navigation (`listAgent: {...}`, `media: {...}`) holds
when a related record matches (`ListAgent/any(r1: r1/...)`).
"""

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal

from odata_query import ast

from graphql_odata.odata.filter import MAX_FILTER_NODES, Like, filter_size
from graphql_odata.schema import EntitySet, entity_sets

COMPARISONS = {"_eq": ast.Eq, "_neq": ast.NotEq, "_gt": ast.Gt, "_gte": ast.GtE, "_lt": ast.Lt, "_lte": ast.LtE}
TRUE, FALSE = ast.Boolean("true"), ast.Boolean("false")


class WhereError(ValueError):
    """A `where` the schema admits but that means nothing (a direction-less combination, a null list)."""


def navigation_field(name: str) -> str:
    """The GraphQL name of a navigation property: `ListAgent` -> `listAgent`."""
    return name[:1].lower() + name[1:]


def where_tree(where: Mapping, entity: EntitySet) -> ast._Node:
    tree = _Builder().all_of(where, entity, None)
    if filter_size(tree) > MAX_FILTER_NODES:
        raise WhereError(f"the condition is too complex (more than {MAX_FILTER_NODES} terms and values)")
    return tree


class _Builder:
    def __init__(self) -> None:
        self.variables = 0

    def all_of(self, where: Mapping, entity: EntitySet, record: str | None) -> ast._Node:
        terms = [self.term(key, value, entity, record) for key, value in where.items()]
        return _joined(ast.And(), terms, TRUE)

    def term(self, key: str, value: object, entity: EntitySet, record: str | None) -> ast._Node:
        if key in ("_and", "_or"):
            if value is None:
                raise WhereError(f"{key} takes a list of conditions, not null")
            parts = [self.all_of(item, entity, record) for item in value]
            return _joined(ast.And(), parts, TRUE) if key == "_and" else _joined(ast.Or(), parts, FALSE)
        if key == "_not":
            if value is None:
                raise WhereError("_not takes a condition, not null")
            return ast.UnaryOp(op=ast.Not(), operand=self.all_of(value, entity, record))
        links = {navigation_field(name): link for name, link in entity.navigation.items()}
        if key in links:
            if value is None:
                raise WhereError(f"{key} takes a condition on the related records, not null")
            link = links[key]
            self.variables += 1
            variable = f"r{self.variables}"
            condition = self.all_of(value, entity_sets()[link.resource], variable)
            return ast.CollectionLambda(
                owner=_reference(link.name, record),
                operator=ast.Any(),
                lambda_=ast.Lambda(identifier=ast.Identifier(variable), expression=condition),
            )
        if value is None:
            raise WhereError(f"{key} takes comparison operators ({{_eq: ...}}), not null")
        field = _reference(key, record)
        return _joined(ast.And(), [_comparison(field, op, operand) for op, operand in value.items()], TRUE)


def _reference(name: str, record: str | None) -> ast._Node:
    return ast.Identifier(name) if record is None else ast.Attribute(owner=ast.Identifier(record), attr=name)


def _comparison(field: ast._Node, operator: str, operand: object) -> ast._Node:
    if operator in COMPARISONS:
        return ast.Compare(comparator=COMPARISONS[operator](), left=field, right=literal(operand))
    if operator in ("_in", "_nin"):
        if operand is None:
            raise WhereError(f"{operator} takes a list of values, not null")
        membership = ast.Compare(comparator=ast.In(), left=field, right=ast.List([literal(v) for v in operand]))
        return membership if operator == "_in" else ast.UnaryOp(op=ast.Not(), operand=membership)
    if operator == "_is_null":
        if operand is None:
            raise WhereError("_is_null takes true or false, not null")
        return ast.Compare(comparator=ast.Eq() if operand else ast.NotEq(), left=field, right=ast.Null())
    if operator in ("_like", "_ilike"):
        if operand is None:
            raise WhereError(f"{operator} takes a pattern, not null")
        if (len(operand) - len(operand.rstrip("\\"))) % 2:
            raise WhereError(f"{operator}: the pattern ends with a lone backslash (write \\\\ for a backslash)")
        return Like(field=field, pattern=operand, case_insensitive=operator == "_ilike")
    if operator in ("_contains_any", "_contains_all"):
        if operand is None:
            raise WhereError(f"{operator} takes a list of values, not null")
        if operator == "_contains_any":
            return _any_element(
                field, ast.Compare(ast.In(), ast.Identifier("v"), ast.List([literal(v) for v in operand]))
            )
        each = [_any_element(field, ast.Compare(ast.Eq(), ast.Identifier("v"), literal(v))) for v in operand]
        return _joined(ast.And(), each, TRUE)
    if operator == "_is_empty":
        if operand is None:
            raise WhereError("_is_empty takes true or false, not null")
        some = ast.CollectionLambda(owner=field, operator=ast.Any(), lambda_=None)
        return ast.UnaryOp(op=ast.Not(), operand=some) if operand else some
    raise WhereError(f"{operator} is not an operator of where")


def _any_element(field: ast._Node, condition: ast._Node) -> ast._Node:
    lambda_ = ast.Lambda(identifier=ast.Identifier("v"), expression=condition)
    return ast.CollectionLambda(owner=field, operator=ast.Any(), lambda_=lambda_)


def literal(value: object) -> ast._Node:
    """A GraphQL input value as the OData literal of the same value (types were checked by GraphQL)."""
    match value:
        case None:
            return ast.Null()
        case bool():
            return TRUE if value else FALSE
        case int():
            return ast.Integer(str(value))
        case Decimal() | float():
            return ast.Float(str(value))
        case datetime():
            return ast.DateTime(value.isoformat())
        case date():
            return ast.Date(value.isoformat())
        case str():
            return ast.String(value)
    raise WhereError(f"{value!r} is not a value where can compare")


def _joined(operator: ast.And | ast.Or, terms: list[ast._Node], empty: ast._Node) -> ast._Node:
    """`terms` joined by `operator`; `empty` (true for and, false for or) when there are none."""
    if not terms:
        return empty
    tree = terms[0]
    for term in terms[1:]:
        tree = ast.BoolOp(op=operator, left=tree, right=term)
    return tree
