"""`$filter`: parsed by `odata-query`, checked against the entity's fields, built as a sqlglot tree.

Names reach SQL only after they matched a field (and are quoted); every literal becomes a bound
parameter of the field's type. Semantics follow OData, not SQL: `eq`/`ne` treat null as a value
(`Field eq null`, `Field ne 'x'` is true for a null), other comparisons with null are false, and
`any`/`all` over an empty or absent list are false/true.
"""

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from odata_query import ast
from odata_query import exceptions as odata_exceptions
from odata_query.grammar import ODataLexer, ODataParser
from sly.lex import Token
from sqlglot import exp

from conf.mappings import Navigation
from graphql_odata.odata.errors import ODataError
from graphql_odata.schema import EntitySet, entity_sets

MAX_FILTER_LENGTH = 4000
MAX_FILTER_NODES = 400
MAX_FILTER_DEPTH = 100
"""How deep terms may nest: rendering SQL recurses once per level, and Python's stack is finite."""
MAX_INTEGER = 2**63 - 1
MAX_DECIMAL_DIGITS = 28

STRING, BOOLEAN, INTEGER, DECIMAL, DOUBLE, DATE, TIMESTAMP = (
    "Edm.String",
    "Edm.Boolean",
    "Edm.Int64",
    "Edm.Decimal",
    "Edm.Double",
    "Edm.Date",
    "Edm.DateTimeOffset",
)
STRINGS = "Collection(Edm.String)"
NULL = "null"
NUMERIC = {INTEGER, DECIMAL, DOUBLE}
FIELD_KINDS = {"Edm.Int32": INTEGER, "Edm.Int64": INTEGER}
SQL_TYPES = {DATE: "DATE", TIMESTAMP: "TIMESTAMPTZ", DECIMAL: "DECIMAL(38,10)", DOUBLE: "DOUBLE"}

COMPARISONS = {ast.Lt: exp.LT, ast.LtE: exp.LTE, ast.Gt: exp.GT, ast.GtE: exp.GTE}
ARITHMETIC = {ast.Add: exp.Add, ast.Sub: exp.Sub, ast.Mult: exp.Mul, ast.Mod: exp.Mod}
STRING_PREDICATES = {"contains": "%{}%", "startswith": "{}%", "endswith": "%{}"}
STRING_FUNCTIONS = {"tolower": exp.Lower, "toupper": exp.Upper, "trim": exp.Trim}
PARTS = {
    "year": (exp.Year, {DATE, TIMESTAMP}),
    "month": (exp.Month, {DATE, TIMESTAMP}),
    "day": (exp.Day, {DATE, TIMESTAMP}),
    "hour": (exp.Hour, {TIMESTAMP}),
    "minute": (exp.Minute, {TIMESTAMP}),
    "second": (exp.Second, {TIMESTAMP}),
}
ROUNDING = {"round": exp.Round, "floor": exp.Floor, "ceiling": exp.Ceil}
LIKE_ESCAPE = "\\"

_parser_lock = threading.Lock()
_lexer, _parser = ODataLexer(), ODataParser()


@dataclass(frozen=True)
class Like(ast._Node):
    """`field LIKE pattern` (`%` any run of characters, `_` one, a backslash escapes either), which
    OData's grammar has no word for: GraphQL's `_like` and `_ilike` build it into the same tree as
    a `$filter`."""

    field: ast._Node
    pattern: str
    case_insensitive: bool = False


@dataclass(frozen=True)
class Typed:
    """A value expression and its OData type (a field's, a literal's, or a function's result)."""

    sql: exp.Expression
    type: str


class Parameters:
    """Bound values of one query, named `p0`, `p1`, ...; SQL only ever holds their placeholders."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def bind(self, value: object, sql_type: str | None = None) -> exp.Expression:
        name = f"p{len(self.values)}"
        self.values[name] = value
        placeholder = exp.Placeholder(this=name)
        return exp.Cast(this=placeholder, to=exp.DataType.build(sql_type)) if sql_type else placeholder


def parse_filter(text: str) -> ast._Node:
    """The OData syntax tree of a `$filter`, or a 400 naming where it stopped making sense."""
    if len(text) > MAX_FILTER_LENGTH:
        raise ODataError(413, f"$filter is {len(text)} characters; at most {MAX_FILTER_LENGTH}", target="$filter")
    if not text.strip():
        raise ODataError(400, "$filter is empty", target="$filter")
    try:
        with _parser_lock:
            tree = _parser.parse(iter(_one_item_lists(list(_lexer.tokenize(text)))))
    except odata_exceptions.ODataException as error:
        raise ODataError(400, f"$filter is not valid OData: {_syntax_message(text, error)}", target="$filter") from None
    if filter_size(tree) > MAX_FILTER_NODES:
        raise ODataError(400, f"$filter is too complex (more than {MAX_FILTER_NODES} terms)", target="$filter")
    return tree


def filter_size(tree: ast._Node) -> int:
    """How many nodes `tree` has, counted without recursion (a deep tree must not exhaust the stack)."""
    count, pending = 0, [tree]
    while pending:
        node = pending.pop()
        count += 1
        for item in dataclasses.fields(node):
            value = getattr(node, item.name)
            for child in value if isinstance(value, list | tuple) else (value,):
                if isinstance(child, ast._Node):
                    pending.append(child)
    return count


def _one_item_lists(tokens: list[Token]) -> list[Token]:
    """`F in ('a')` is valid OData, but odata-query only reads a one-item list written `('a',)`: add the comma."""
    fixed = list(tokens)
    for position in reversed(range(len(tokens))):
        if tokens[position].type != "IN":
            continue
        opening = position + 1  # the lexer's IN token takes the spaces around `in`
        if opening == len(tokens) or tokens[opening].type != "(":
            continue
        depth = 0
        for index in range(opening, len(tokens)):
            kind = tokens[index].type
            depth += kind == "("
            depth -= kind == ")"
            if depth == 1 and kind == ",":
                break
            if depth == 0:
                comma = Token()
                comma.type, comma.value, comma.lineno, comma.index = ",", ",", 1, tokens[index].index
                fixed.insert(index, comma)
                break
    return fixed


def _syntax_message(text: str, error: odata_exceptions.ODataException) -> str:
    token = getattr(error, "token", None)
    if " has " in f" {text} ":
        return (
            "`has` applies to enumeration types, and this service serves lookups as strings "
            "(RESO Lookup resource): use `Field eq 'Value'`, or `Field/any(v: v eq 'Value')` for a multi-select"
        )
    if token is None:
        return "it ends too early"
    return f"unexpected {token.value!r} at position {token.index}"


class FilterCompiler:
    """Turns one `$filter` tree into a boolean sqlglot expression over one entity set's columns."""

    def __init__(
        self,
        entity: EntitySet,
        parameters: Parameters,
        *,
        now: datetime | None = None,
        tables: Callable[[EntitySet], exp.Table] | None = None,
        record: str | None = None,
    ) -> None:
        """`tables` names the backend's table of a related entity set (no filters on related records
        without it); `record` is the lambda variable standing for a related record, inside its
        `Nav/any(r: ...)`, where fields are written `r/Field`."""
        self.entity = entity
        self.parameters = parameters
        self.now = now or datetime.now(UTC)
        self.tables = tables
        self.record = record
        self.lambda_variables: dict[str, Typed] = {}
        self.depth = 0

    def condition(self, node: ast._Node) -> exp.Expression:
        """A two-valued condition: where SQL would say unknown (a null operand), OData says false."""
        typed = self.value(node)
        if typed.type != BOOLEAN:
            raise ODataError(400, f"$filter must be a condition, not a {typed.type} value", target="$filter")
        return _definite(typed.sql) if isinstance(node, ast.Identifier | ast.Attribute) else typed.sql

    def value(self, node: ast._Node) -> Typed:
        if self.depth >= MAX_FILTER_DEPTH:
            raise ODataError(400, f"$filter nests terms more than {MAX_FILTER_DEPTH} levels deep", target="$filter")
        self.depth += 1
        try:
            return self.term(node)
        finally:
            self.depth -= 1

    def term(self, node: ast._Node) -> Typed:
        match node:
            case ast.Identifier():
                return self.identifier(node)
            case ast._Literal():
                return self.literal(node)
            case ast.BoolOp():
                combine = exp.And if isinstance(node.op, ast.And) else exp.Or
                left, right = self.condition(node.left), self.condition(node.right)
                return Typed(combine(this=_group(left), expression=_group(right)), BOOLEAN)
            case ast.UnaryOp(op=ast.Not()):
                return Typed(exp.Not(this=exp.Paren(this=self.condition(node.operand))), BOOLEAN)
            case ast.UnaryOp(op=ast.USub()):
                operand = self.value(node.operand)
                self.require(operand, NUMERIC, "the operand of -")
                return Typed(exp.Neg(this=_group(operand.sql)), operand.type)
            case ast.Compare():
                return self.compare(node)
            case ast.BinOp():
                return self.arithmetic(node)
            case ast.Call():
                return self.call(node)
            case ast.CollectionLambda():
                return self.collection_lambda(node)
            case Like():
                return self.like(node)
            case ast.Attribute(owner=ast.Identifier(name=owner)) if owner == self.record:
                return self.field(node.attr)
            case ast.Attribute():
                raise ODataError(
                    400,
                    "$filter: to filter on related records write Nav/any(r: r/Field ...), e.g. "
                    "ListAgent/any(a: a/MemberLastName eq 'Smith')",
                    target="$filter",
                )
        raise ODataError(400, f"$filter: {type(node).__name__} is not supported", target="$filter")

    def identifier(self, node: ast.Identifier) -> Typed:
        if node.namespace:
            raise ODataError(400, f"$filter: qualified names are not supported ({node.name})", target="$filter")
        if node.name in self.lambda_variables:
            return self.lambda_variables[node.name]
        if self.record is not None:
            raise ODataError(
                400,
                f"$filter: inside {self.entity.name}/any({self.record}: ...) name its fields {self.record}/Field; "
                f"{node.name!r} is not one of them, and fields outside it cannot be used there",
                target=node.name,
            )
        return self.field(node.name)

    def field(self, name: str) -> Typed:
        field = self.entity.fields.get(name)
        if field is None:
            raise ODataError(400, f"$filter: {self.entity.name} has no field {name!r}", target=name)
        return Typed(exp.column(field.name, quoted=True), FIELD_KINDS.get(field.type, field.type))

    def literal(self, node: ast._Literal) -> Typed:
        match node:
            case ast.Null():
                return Typed(exp.Null(), NULL)
            case ast.Boolean():
                return Typed(exp.Boolean(this=node.val == "true"), BOOLEAN)
            case ast.String():
                return Typed(self.parameters.bind(node.val), STRING)
            case ast.Integer():
                number = int(node.val)
                if abs(number) > MAX_INTEGER:
                    raise ODataError(400, f"$filter: {node.val} is out of range for Edm.Int64", target="$filter")
                return Typed(self.parameters.bind(number), INTEGER)
            case ast.Float():
                number = Decimal(node.val)  # the lexer's pattern is a decimal number's
                if not number.is_finite() or number.adjusted() >= MAX_DECIMAL_DIGITS:
                    raise ODataError(400, f"$filter: {node.val} is out of range for Edm.Decimal", target="$filter")
                return Typed(self.parameters.bind(number, SQL_TYPES[DECIMAL]), DECIMAL)
            case ast.Date():
                return Typed(self.parameters.bind(self._parse(date.fromisoformat, node.val), "DATE"), DATE)
            case ast.DateTime():
                moment = self._parse(datetime.fromisoformat, node.val)
                if moment.tzinfo is None:
                    raise ODataError(400, f"$filter: timestamp {node.val} needs a zone (Z or +hh:mm)", target="$filter")
                return Typed(self.parameters.bind(moment.astimezone(UTC), SQL_TYPES[TIMESTAMP]), TIMESTAMP)
            case ast.List():
                raise ODataError(400, "$filter: a list of values belongs after `in`", target="$filter")
        raise ODataError(400, f"$filter: {type(node).__name__} literals are not supported", target="$filter")

    @staticmethod
    def _parse(parse, text: str):
        try:
            return parse(text)
        except ValueError:
            raise ODataError(400, f"$filter: {text!r} is not a valid date or timestamp", target="$filter") from None

    def compare(self, node: ast.Compare) -> Typed:
        left = self.value(node.left)
        if isinstance(node.comparator, ast.In):
            return self.membership(left, node.right)
        right = self.value(node.right)
        for side in (left, right):
            if side.type == STRINGS:
                raise ODataError(
                    400,
                    "$filter: compare a multi-select field with any() or all(), e.g. F/any(v: v eq 'X')",
                    target="$filter",
                )
        self.require_comparable(left, right)
        left, right = Typed(_group(left.sql), left.type), Typed(_group(right.sql), right.type)
        if isinstance(node.comparator, ast.Eq | ast.NotEq):
            equal = (
                exp.Is(this=(left if right.type == NULL else right).sql, expression=exp.Null())
                if NULL in (left.type, right.type)
                else exp.NullSafeEQ(this=left.sql, expression=right.sql)
            )
            return Typed(equal if isinstance(node.comparator, ast.Eq) else exp.Not(this=exp.Paren(this=equal)), BOOLEAN)
        if NULL in (left.type, right.type):
            return Typed(exp.false(), BOOLEAN)
        return Typed(_definite(COMPARISONS[type(node.comparator)](this=left.sql, expression=right.sql)), BOOLEAN)

    def membership(self, left: Typed, right: ast.List) -> Typed:
        """`F in (...)`: the parser accepts nothing but a list there (a one-item list is `_one_item_lists`' work)."""
        values = [self.value(item) for item in right.val]
        for value in values:
            self.require_comparable(left, value)
        present = [v.sql for v in values if v.type != NULL]
        test = exp.In(this=left.sql, expressions=present) if present else exp.false()
        if len(present) < len(values):
            test = exp.Or(this=test, expression=exp.Is(this=left.sql, expression=exp.Null()))
        return Typed(_definite(exp.Paren(this=test)), BOOLEAN)

    def arithmetic(self, node: ast.BinOp) -> Typed:
        left, right = self.value(node.left), self.value(node.right)
        for side in (left, right):
            self.require(side, NUMERIC | {NULL}, "arithmetic")
        kinds = {left.type, right.type} - {NULL}
        result = DOUBLE if DOUBLE in kinds else DECIMAL if DECIMAL in kinds else INTEGER
        operands = {"this": _group(left.sql), "expression": _group(right.sql)}
        if isinstance(node.op, ast.Div | ast.Mod):
            # Division by zero: a 400 when the divisor is written as zero; a divisor that is zero in a row
            # makes the term NULL (the row does not match), on every backend alike.
            if isinstance(node.right, ast.Integer | ast.Float) and Decimal(node.right.val) == 0:
                raise ODataError(400, f"$filter divides by zero ({type(node.op).__name__.lower()} 0)", target="$filter")
            if isinstance(node.op, ast.Div) and result != INTEGER:
                return Typed(exp.Div(**operands, typed=True, safe=True), result)
            operands["expression"] = exp.Nullif(this=_group(right.sql), expression=exp.Literal.number(0))
            if isinstance(node.op, ast.Div):
                return Typed(exp.IntDiv(**operands), INTEGER)
        return Typed(ARITHMETIC[type(node.op)](**operands), result)

    def call(self, node: ast.Call) -> Typed:
        name = node.func.name
        if name in STRING_PREDICATES:
            text, pattern = node.args
            if not isinstance(pattern, ast.String):
                raise ODataError(400, f"$filter: the second argument of {name}() must be a string", target="$filter")
            text = self.value(text)
            self.require(text, {STRING}, f"{name}()")
            escaped = "".join(LIKE_ESCAPE + c if c in "%_\\" else c for c in pattern.val)
            like = exp.Like(this=text.sql, expression=self.parameters.bind(STRING_PREDICATES[name].format(escaped)))
            return Typed(_definite(exp.Escape(this=like, expression=exp.Literal.string(LIKE_ESCAPE))), BOOLEAN)
        args = [self.value(arg) for arg in node.args]
        if name in STRING_FUNCTIONS:
            self.require(args[0], {STRING}, f"{name}()")
            return Typed(STRING_FUNCTIONS[name](this=args[0].sql), STRING)
        if name == "length":
            self.require(args[0], {STRING}, "length()")
            return Typed(exp.Length(this=args[0].sql), INTEGER)
        if name in PARTS:
            function, accepted = PARTS[name]
            self.require(args[0], accepted, f"{name}()")
            return Typed(function(this=args[0].sql), INTEGER)
        if name == "date":
            self.require(args[0], {TIMESTAMP}, "date()")
            return Typed(exp.Cast(this=args[0].sql, to=exp.DataType.build("DATE")), DATE)
        if name == "now":
            return Typed(self.parameters.bind(self.now, SQL_TYPES[TIMESTAMP]), TIMESTAMP)
        if name in ROUNDING:
            self.require(args[0], NUMERIC, f"{name}()")
            return Typed(ROUNDING[name](this=args[0].sql), args[0].type)
        raise ODataError(400, f"$filter: the function {name}() is not supported", target="$filter")

    def like(self, node: Like) -> Typed:
        text = self.value(node.field)
        self.require(text, {STRING}, "like")
        matches = (exp.ILike if node.case_insensitive else exp.Like)(
            this=text.sql, expression=self.parameters.bind(node.pattern)
        )
        return Typed(_definite(exp.Escape(this=matches, expression=exp.Literal.string(LIKE_ESCAPE))), BOOLEAN)

    def collection_lambda(self, node: ast.CollectionLambda) -> Typed:
        link = self.navigation(node.owner)
        if link is not None:
            return self.related(link, node)
        owner = self.value(node.owner)
        if owner.type != STRINGS:
            raise ODataError(400, "$filter: any() and all() apply to multi-select fields", target="$filter")
        if node.lambda_ is None:  # `F/any()`; the parser refuses `F/all()`
            return Typed(exp.GT(this=exp.ArraySize(this=owner.sql), expression=exp.Literal.number(0)), BOOLEAN)
        name = node.lambda_.identifier.name
        if name in self.lambda_variables or name in self.entity.fields:
            raise ODataError(400, f"$filter: the lambda variable {name!r} hides another name", target="$filter")
        variable = exp.to_identifier(f"v{len(self.lambda_variables)}")
        self.lambda_variables[name] = Typed(variable, STRING)
        try:
            body = self.condition(node.lambda_.expression)
        finally:
            del self.lambda_variables[name]
        if isinstance(node.operator, ast.Any):
            matches, expected = _definite(body), exp.GT
        else:
            matches, expected = exp.Not(this=_definite(body)), exp.EQ
        counted = exp.ArraySize(
            this=exp.ArrayFilter(
                this=exp.Coalesce(this=owner.sql, expressions=[exp.Array(expressions=[])]),
                expression=exp.Lambda(this=matches, expressions=[variable]),
            )
        )
        return Typed(expected(this=counted, expression=exp.Literal.number(0)), BOOLEAN)

    def navigation(self, owner: ast._Node) -> Navigation | None:
        """The navigation property `owner` names (`Nav` here, `r/Nav` inside a related record's lambda)."""
        match owner:
            case ast.Identifier(name=name) if self.record is None and name not in self.lambda_variables:
                return self.entity.navigation.get(name)
            case ast.Attribute(owner=ast.Identifier(name=variable), attr=name) if variable == self.record:
                return self.entity.navigation.get(name)
        return None

    def related(self, link: Navigation, node: ast.CollectionLambda) -> Typed:
        """`Nav/any(r: ...)` and `Nav/all(r: ...)` as a semi-join: this record's `link.local` among the
        `link.remote` values of the related rows that match (or, for all(), of none that does not).
        The related rows' condition lies wholly inside the subquery, over their own columns."""
        if self.tables is None:
            raise ODataError(400, "$filter: filters on related records are not available here", target="$filter")
        target = entity_sets()[link.resource]
        remote = exp.column(link.remote, quoted=True)
        matching = exp.select(remote).from_(self.tables(target))
        if node.lambda_ is not None:
            inner = FilterCompiler(
                target, self.parameters, now=self.now, tables=self.tables, record=node.lambda_.identifier.name
            )
            inner.depth = self.depth
            body = inner.condition(node.lambda_.expression)
            if isinstance(node.operator, ast.All):
                body = exp.and_(exp.not_(exp.Is(this=remote.copy(), expression=exp.Null())), exp.not_(exp.paren(body)))
            matching = matching.where(body)
        found = _definite(exp.In(this=exp.column(link.local, quoted=True), query=matching.subquery()))
        if isinstance(node.operator, ast.All):
            return Typed(exp.Not(this=exp.Paren(this=found)), BOOLEAN)
        return Typed(found, BOOLEAN)

    @staticmethod
    def require(typed: Typed, accepted: set[str], where: str) -> None:
        if typed.type not in accepted:
            raise ODataError(
                400, f"$filter: {where} takes {' or '.join(sorted(accepted))}, not {typed.type}", target="$filter"
            )

    @staticmethod
    def require_comparable(left: Typed, right: Typed) -> None:
        kinds = {left.type, right.type} - {NULL}
        if len(kinds) <= 1 or kinds <= NUMERIC:
            return
        raise ODataError(400, f"$filter: cannot compare {left.type} with {right.type}", target="$filter")


def _group(expression: exp.Expression) -> exp.Expression:
    """Parenthesise a compound operand: the OData tree fixed the grouping, SQL text must keep it."""
    return exp.Paren(this=expression) if isinstance(expression, exp.Binary | exp.Unary) else expression


def _definite(condition: exp.Expression) -> exp.Expression:
    return exp.Coalesce(this=condition, expressions=[exp.false()])
