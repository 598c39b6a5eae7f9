"""System query options, parsed and checked against the entity set before any SQL exists.

`$select`, `$filter`, `$orderby`, `$top`, `$skip`, `$count`, `$expand` (with nested options) and
the server's `$skiptoken`. Anything unknown, malformed or naming a field that is not there is a
400 naming the option and the problem.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass

from odata_query import ast

from conf.mappings import Navigation
from graphql_odata.odata.errors import ODataError
from graphql_odata.odata.filter import parse_filter
from graphql_odata.schema import EntitySet, entity_sets

MAX_TOP = 1000
MAX_SKIP = 1_000_000
MAX_EXPAND_DEPTH = 2
MAX_ORDERBY_TERMS = 8
TOP_LEVEL_OPTIONS = {"$select", "$filter", "$orderby", "$top", "$skip", "$count", "$expand", "$skiptoken", "$format"}
NESTED_OPTIONS = {"$select", "$filter", "$orderby", "$top", "$skip", "$expand"}
UNSUPPORTED_OPTIONS = {"$search", "$apply", "$compute", "$index", "$levels"}
ORDER_TERM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)(?:\s+(asc|desc))?\s*$", re.IGNORECASE)
JSON_FORMATS = {"json", "application/json"}
DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class OrderTerm:
    field: str
    descending: bool = False


@dataclass(frozen=True)
class Expansion:
    link: Navigation
    query: "CollectionQuery"


@dataclass(frozen=True)
class CollectionQuery:
    entity: EntitySet
    select: tuple[str, ...]
    filter: ast._Node | None = None
    orderby: tuple[OrderTerm, ...] = ()
    top: int | None = None
    skip: int = 0
    count: bool = False
    expand: tuple[Expansion, ...] = ()
    skiptoken: str | None = None
    documents: bool = True
    """Whether whole records may be read as the JSON documents a backend stores (OData's wire form);
    GraphQL reads typed rows."""

    @property
    def selects_everything(self) -> bool:
        return len(self.select) == len(self.entity.fields)

    @property
    def reads_documents(self) -> bool:
        """Whether the backend's stored documents can serve this query's records whole."""
        return self.documents and self.selects_everything

    @property
    def order(self) -> tuple[OrderTerm, ...]:
        """The requested order made total by the key, so pages never repeat or skip a row."""
        if any(term.field == self.entity.key for term in self.orderby):
            return self.orderby
        return (*self.orderby, OrderTerm(self.entity.key))


def entity_set(name: str) -> EntitySet:
    entity = entity_sets().get(name)
    if entity is None:
        raise ODataError(404, f"no resource named {name!r}; the service document at /odata lists them", target=name)
    return entity


def parse_query(options: Mapping[str, str], entity: EntitySet, *, depth: int = 0) -> CollectionQuery:
    """Every system query option of one request (or one `$expand` item), checked against `entity`."""
    allowed = TOP_LEVEL_OPTIONS if depth == 0 else NESTED_OPTIONS
    for name in options:
        if name in UNSUPPORTED_OPTIONS:
            raise ODataError(501, f"{name} is not supported by this service", target=name)
        if name.startswith("$") and name not in allowed:
            where = "here" if depth == 0 else "inside $expand"
            raise ODataError(400, f"{name} is not a system query option allowed {where}", target=name)
    if options.get("$format", "json").lower().split(";")[0] not in JSON_FORMATS:
        raise ODataError(400, "$format: collections are served as application/json only", target="$format")
    filter_text = options.get("$filter")
    return CollectionQuery(
        entity=entity,
        select=_select(options.get("$select"), entity),
        filter=parse_filter(filter_text) if filter_text is not None else None,
        orderby=_orderby(options.get("$orderby"), entity),
        top=_integer(options.get("$top"), "$top", MAX_TOP),
        skip=_integer(options.get("$skip"), "$skip", MAX_SKIP) or 0,
        count=_boolean(options.get("$count"), "$count"),
        expand=_expand(options.get("$expand"), entity, depth),
        skiptoken=options.get("$skiptoken"),
    )


def shown(value: str, limit: int = 40) -> str:
    """`value` quoted for an error message, cut short: a client may send megabytes."""
    return repr(value) if len(value) <= limit else repr(value[:limit]) + f"... ({len(value):,} characters)"


def _integer(value: str | None, option: str, maximum: int) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if not DIGITS.fullmatch(text):
        raise ODataError(
            400, f"{option} must be a non-negative integer in digits 0-9, got {shown(value)}", target=option
        )
    digits = text.lstrip("0") or "0"
    number = int(digits) if len(digits) <= len(str(maximum)) else maximum + 1
    if number > maximum:
        hint = "; page with @odata.nextLink for more" if option == "$top" else ""
        raise ODataError(400, f"{option} may be at most {maximum}{hint}", target=option)
    return number


def _boolean(value: str | None, option: str) -> bool:
    if value is None:
        return False
    if value.lower() not in {"true", "false"}:
        raise ODataError(400, f"{option} must be true or false, got {shown(value)}", target=option)
    return value.lower() == "true"


def _select(value: str | None, entity: EntitySet) -> tuple[str, ...]:
    if value is None or value.strip() == "*":
        return tuple(entity.fields)
    chosen = [part.strip() for part in value.split(",")]
    if not all(chosen):
        raise ODataError(400, "$select has an empty item", target="$select")
    unknown = [name for name in chosen if name not in entity.fields and name != "*"]
    if unknown:
        raise ODataError(400, f"$select names unknown fields of {entity.name}: {', '.join(unknown)}", target="$select")
    if "*" in chosen:
        return tuple(entity.fields)
    return tuple(dict.fromkeys(chosen))


def _orderby(value: str | None, entity: EntitySet) -> tuple[OrderTerm, ...]:
    if value is None:
        return ()
    terms = []
    for part in value.split(","):
        match = ORDER_TERM.match(part)
        if match is None:
            raise ODataError(400, f"$orderby: {part.strip()!r} is not `Field [asc|desc]`", target="$orderby")
        name, direction = match.groups()
        field = entity.fields.get(name)
        if field is None:
            raise ODataError(400, f"$orderby: {entity.name} has no field {name!r}", target="$orderby")
        if field.is_collection:
            raise ODataError(400, f"$orderby: {name} is a multi-select field and has no order", target="$orderby")
        terms.append(OrderTerm(name, (direction or "asc").lower() == "desc"))
    if len(terms) > MAX_ORDERBY_TERMS:
        raise ODataError(400, f"$orderby takes at most {MAX_ORDERBY_TERMS} fields", target="$orderby")
    if len({t.field for t in terms}) < len(terms):
        raise ODataError(400, "$orderby names a field twice", target="$orderby")
    return tuple(terms)


def _expand(value: str | None, entity: EntitySet, depth: int) -> tuple[Expansion, ...]:
    if value is None:
        return ()
    if depth >= MAX_EXPAND_DEPTH:
        raise ODataError(400, f"$expand nests at most {MAX_EXPAND_DEPTH} levels", target="$expand")
    expansions = []
    for item in split_top_level(value, ",", "$expand"):
        name, _, rest = item.partition("(")
        name = name.strip()
        link = entity.navigation.get(name)
        if link is None:
            known = ", ".join(entity.navigation) or "none"
            raise ODataError(
                400, f"$expand: {entity.name} has no navigation property {name!r} (it has: {known})", target="$expand"
            )
        if rest and not rest.rstrip().endswith(")"):
            raise ODataError(400, f"$expand: {item!r} has unbalanced parentheses", target="$expand")
        nested = _nested_options(rest.rstrip()[:-1]) if rest else {}
        target = entity_sets()[link.resource]
        query = parse_query(nested, target, depth=depth + 1)
        if not link.many and (query.filter or query.orderby or query.top is not None or query.skip):
            raise ODataError(
                400, f"$expand: {name} is a single record; only $select and $expand apply to it", target="$expand"
            )
        expansions.append(Expansion(link, query))
    if len({e.link.name for e in expansions}) < len(expansions):
        raise ODataError(400, "$expand names a navigation property twice", target="$expand")
    return tuple(expansions)


def _nested_options(text: str) -> dict[str, str]:
    options = {}
    for part in split_top_level(text, ";", "$expand"):
        name, equals, value = part.partition("=")
        if not equals:
            raise ODataError(400, f"$expand: {shown(part)} is not `$option=value`", target="$expand")
        if name.strip() in options:
            raise ODataError(400, f"$expand: {name.strip()} is given twice", target="$expand")
        options[name.strip()] = value.strip()
    return options


def split_top_level(text: str, separator: str, option: str) -> list[str]:
    """`text` split at `separator` outside quotes and parentheses (quotes double to escape)."""
    parts, depth, quoted, current = [], 0, False, []
    for character in text:
        if character == "'":
            quoted = not quoted
        elif not quoted and character == "(":
            depth += 1
        elif not quoted and character == ")":
            depth -= 1
            if depth < 0:
                raise ODataError(400, f"{option}: unbalanced parentheses", target=option)
        elif not quoted and depth == 0 and character == separator:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(character)
    if depth or quoted:
        raise ODataError(400, f"{option}: unbalanced parentheses or quotes", target=option)
    parts.append("".join(current).strip())
    if not all(parts):
        raise ODataError(400, f"{option} has an empty item", target=option)
    return parts


def parse_key(text: str, entity: EntitySet) -> str:
    """The key of `Resource('K')` or `Resource(Key='K')`: a quoted string, quotes doubled inside."""
    body = text.strip()
    name, equals, literal = body.partition("=")
    if equals:
        if name.strip() != entity.key:
            raise ODataError(400, f"{entity.name} is keyed by {entity.key}, not {name.strip()!r}", target=entity.key)
        body = literal.strip()
    if len(body) < 2 or body[0] != "'" or body[-1] != "'" or re.search(r"(?<!')'(?!')", body[1:-1]):
        raise ODataError(400, f"{entity.name} keys are strings: write {entity.name}('key')", target=entity.key)
    return body[1:-1].replace("''", "'")
