"""Qobrix `search` expressions (Symfony Expression Language subset), parsed with lark.

Supported: `==, !=, <>, <, <=, >, >=`, `in [..]`, `not in [..]`, `in a..b`, `contains`,
`starts with`, `ends with`, `and`/`&&`, `or`/`||`, `not`/`!`, parentheses, and literals
(strings, numbers, true, false, null). Fields may be qualified by the model name
(`Properties.modified`). Anything else is a SearchError, which the server answers with 400.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from lark import Lark, Transformer, v_args
from lark.exceptions import LarkError, VisitError

GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: _NOT not_expr -> negate
         | predicate
?predicate: operand COMPARATOR operand -> compare
          | operand _NOT _IN list -> not_in
          | operand _IN list -> in_list
          | operand _IN NUMBER ".." NUMBER -> between
          | operand _CONTAINS operand -> contains
          | operand _STARTS _WITH operand -> starts_with
          | operand _ENDS _WITH operand -> ends_with
          | "(" or_expr ")"
?operand: literal | field | call
call: NAME "(" [operand ("," operand)*] ")"
field: NAME ("." NAME)*
list: "[" [literal ("," literal)*] "]"
?literal: STRING -> string
        | NUMBER -> number
        | _TRUE -> true
        | _FALSE -> false
        | _NULL -> null

COMPARATOR: "==" | "!=" | "<>" | "<=" | ">=" | "<" | ">"
_OR.2: /or\b/ | "||"
_AND.2: /and\b/ | "&&"
_NOT.2: /not\b/ | "!"
_IN.2: /in\b/
_CONTAINS.2: /contains\b/
_STARTS.2: /starts\b/
_ENDS.2: /ends\b/
_WITH.2: /with\b/
_TRUE.2: /true\b/
_FALSE.2: /false\b/
_NULL.2: /null\b/
NAME: /[A-Za-z_][A-Za-z0-9_]*/
STRING: /'(?:[^'\\]|\\.)*'/ | /"(?:[^"\\]|\\.)*"/
NUMBER: /-?\d+(\.\d+)?/
%ignore /\s+/
"""

FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
DATE_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}")


class SearchError(ValueError):
    """The expression is malformed or uses what the sandbox does not support."""


@dataclass(frozen=True)
class Field:
    name: str


@dataclass(frozen=True)
class Literal:
    value: object


@dataclass(frozen=True)
class Compare:
    field: str
    op: str
    value: object


@dataclass(frozen=True)
class InList:
    field: str
    values: tuple
    negate: bool = False


@dataclass(frozen=True)
class Between:
    field: str
    low: float
    high: float


@dataclass(frozen=True)
class Text:
    field: str
    kind: str
    value: str


@dataclass(frozen=True)
class And:
    items: tuple


@dataclass(frozen=True)
class Or:
    items: tuple


@dataclass(frozen=True)
class Not:
    item: object


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def _number(token: str) -> int | float:
    return float(token) if "." in token else int(token)


@v_args(inline=True)
class _ToTree(Transformer):
    def string(self, token):
        return Literal(_unquote(str(token)))

    def number(self, token):
        return Literal(_number(str(token)))

    def true(self):
        return Literal(True)

    def false(self):
        return Literal(False)

    def null(self):
        return Literal(None)

    def field(self, *names):
        return Field(".".join(str(name) for name in names))

    def call(self, name, *arguments):
        raise SearchError(f"function {name}() is not supported in search expressions here")

    def list(self, *items):
        return tuple(item.value for item in items if item is not None)

    def compare(self, left, op, right):
        op = "!=" if str(op) == "<>" else str(op)
        if isinstance(left, Field) and isinstance(right, Literal):
            return Compare(left.name, op, right.value)
        if isinstance(right, Field) and isinstance(left, Literal):
            return Compare(right.name, FLIPPED[op], left.value)
        raise SearchError("a comparison needs one field and one literal value")

    def in_list(self, operand, values):
        return InList(_field(operand), values)

    def not_in(self, operand, values):
        return InList(_field(operand), values, negate=True)

    def between(self, operand, low, high):
        return Between(_field(operand), _number(str(low)), _number(str(high)))

    def _text(self, kind, operand, value):
        if not isinstance(value, Literal) or not isinstance(value.value, str):
            raise SearchError(f"`{kind.replace('_', ' ')}` needs a string value")
        return Text(_field(operand), kind, value.value)

    def contains(self, operand, value):
        return self._text("contains", operand, value)

    def starts_with(self, operand, value):
        return self._text("starts_with", operand, value)

    def ends_with(self, operand, value):
        return self._text("ends_with", operand, value)

    def negate(self, item):
        return Not(item)

    def and_expr(self, *items):
        return And(items)

    def or_expr(self, *items):
        return Or(items)


def _field(operand) -> str:
    if not isinstance(operand, Field):
        raise SearchError("the left side of in/contains/starts with/ends with must be a field")
    return operand.name


_PARSER = Lark(GRAMMAR, parser="lalr", maybe_placeholders=False)


@lru_cache(maxsize=256)
def parse(expression: str, model: str, fields: frozenset[str]) -> object:
    """The expression as a tree, with every field checked against the entity's fields."""
    if len(expression) > 4096:
        raise SearchError("search expression longer than 4096 characters")
    try:
        tree = _ToTree().transform(_PARSER.parse(expression))
    except VisitError as error:
        if isinstance(error.orig_exc, SearchError):
            raise error.orig_exc from None
        raise SearchError(f"malformed search expression: {error.orig_exc}") from None
    except LarkError as error:
        message = str(error).splitlines()[0]
        raise SearchError(f"malformed search expression: {message}") from None
    if isinstance(tree, (Field, Literal)):
        raise SearchError("a search expression must be a condition, not a bare value")
    _check_fields(tree, model, fields)
    return tree


def _check_fields(node, model: str, fields: frozenset[str]) -> None:
    if isinstance(node, (And, Or)):
        for item in node.items:
            _check_fields(item, model, fields)
        return
    if isinstance(node, Not):
        _check_fields(node.item, model, fields)
        return
    name = node.field
    if "." in name:
        prefix, _, rest = name.partition(".")
        if prefix != model or "." in rest:
            raise SearchError(f"field {name} is not supported: only fields of {model} can be searched here")
        object.__setattr__(node, "field", rest)
        name = rest
    if name not in fields:
        raise SearchError(f"unknown field {name!r} for {model}")


def parse_moment(text: str) -> datetime | None:
    """Qobrix date-times come as `2025-12-02 10:00:00`, `2025-12-02T10:00:00+00:00` or a date; no zone means UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _comparable(record_value: object, literal: object) -> tuple[object, object] | None:
    if record_value is None or literal is None:
        return None
    if (
        isinstance(literal, str)
        and isinstance(record_value, str)
        and DATE_LIKE.match(literal)
        and DATE_LIKE.match(record_value)
    ):
        left, right = parse_moment(record_value), parse_moment(literal)
        return (left, right) if left and right else (record_value, literal)
    if isinstance(literal, bool) or isinstance(record_value, bool):
        return (record_value, literal) if isinstance(record_value, bool) and isinstance(literal, bool) else None
    if isinstance(literal, (int, float)) and isinstance(record_value, (int, float)):
        return record_value, literal
    if isinstance(literal, str) and isinstance(record_value, str):
        return record_value, literal
    return None


def matches(node, record: dict) -> bool:
    """Evaluate a parsed expression against one record."""
    if isinstance(node, And):
        return all(matches(item, record) for item in node.items)
    if isinstance(node, Or):
        return any(matches(item, record) for item in node.items)
    if isinstance(node, Not):
        return not matches(node.item, record)
    value = record.get(node.field)
    if isinstance(node, Compare):
        if node.value is None:
            return (value is None) == (node.op == "==") if node.op in ("==", "!=") else False
        pair = _comparable(value, node.value)
        if pair is None:
            return node.op == "!=" and value is not None
        left, right = pair
        return {
            "==": left == right,
            "!=": left != right,
            "<": left < right,
            "<=": left <= right,
            ">": left > right,
            ">=": left >= right,
        }[node.op]
    if isinstance(node, InList):
        values = value if isinstance(value, list) else [value]
        found = any(v in node.values for v in values)
        return found != node.negate
    if isinstance(node, Between):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and node.low <= value <= node.high
    if isinstance(node, Text):
        if not isinstance(value, str):
            return False
        return {
            "contains": node.value in value,
            "starts_with": value.startswith(node.value),
            "ends_with": value.endswith(node.value),
        }[node.kind]
    raise SearchError(f"cannot evaluate {node!r}")


def fields_used(node) -> set[str]:
    if isinstance(node, (And, Or)):
        return set().union(*(fields_used(item) for item in node.items))
    if isinstance(node, Not):
        return fields_used(node.item)
    return {node.field}
