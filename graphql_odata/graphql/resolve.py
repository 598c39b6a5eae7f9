"""Root fields read through OData's query model, and answered whole.

The selection under a root field (fragments, aliases and `@skip`/`@include` resolved by
graphql-core) becomes one `CollectionQuery`: its fields, `where`, order, and each navigation field as
an expansion with its own arguments, read keys first like an OData request. Related records come
per level for the whole page at once: a page of listings with media, agent and office costs one
query per level, never one per record.

Records arrive as OData JSON (the snapshot's stored documents, or rows serialised as OData
serialises them), and the root field's whole answer is built here from the planned selection
(`Shaped`): graphql-core completes every other field, but walking each of thousands of values of a
page through it cost many times the read.
"""

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from graphql import GraphQLError, GraphQLObjectType, GraphQLResolveInfo, get_named_type
from graphql.execution.collect_fields import collect_sub_fields
from graphql.execution.values import get_argument_values
from graphql.language import FieldNode, VariableNode, Visitor, visit

from conf.mappings import Navigation
from graphql_odata.backends.base import Backend, BackendUnavailable, QueryRejected
from graphql_odata.graphql.where import WhereError, navigation_field, where_tree
from graphql_odata.odata.errors import ODataError
from graphql_odata.odata.fetch import read_count, read_entity, read_page
from graphql_odata.odata.paging import decode_token, encode_token
from graphql_odata.odata.query import CollectionQuery, Expansion, OrderTerm
from graphql_odata.odata.wire import Document, dumps
from graphql_odata.schema import EntitySet, entity_sets

DEFAULT_FIRST = 100
MAX_FIRST = 1000
MAX_NESTING = 2
"""Navigation levels under a root field, as `$expand` allows."""
UNBOUNDED_ESTIMATE = 100
"""Related records per record the cost counts for a list field with no `first`."""
MAX_COST = 200_000
"""Records one query may ask for: `first` times each nested `first` (a page of 1,000 listings with
100 media each is within it)."""
MAX_ROOT_FIELDS = 20
COUNT_COST = 1000
"""What `totalCount` is charged, in records: it reads every record `where` selects."""
CODES = {400: "BAD_USER_INPUT", 404: "NOT_FOUND", 503: "SERVICE_UNAVAILABLE"}


class CostBudget:
    """Records one request may still ask for, over all its root fields (aliases multiply them), and
    how many root fields it may have."""

    def __init__(self, records: int = MAX_COST) -> None:
        self.left = records
        self.root_fields = 0

    def enter_root_field(self) -> None:
        self.root_fields += 1
        if self.root_fields > MAX_ROOT_FIELDS:
            raise limit_exceeded(f"a request reads at most {MAX_ROOT_FIELDS} root fields", "root fields")

    def charge(self, records: int) -> None:
        if records > self.left:
            spent = MAX_COST - self.left
            raise limit_exceeded(
                f"this query may read {spent + records:,} records; at most {MAX_COST:,} in one request: "
                "ask for fewer with first, on connections and on nested lists",
                "cost",
            )
        self.left -= records


@dataclass(frozen=True)
class RequestContext:
    backend: Backend
    cursor_key: bytes
    """The key OData's `$skiptoken`s are signed with: a cursor is one."""
    now: datetime
    budget: CostBudget = field(default_factory=CostBudget)


@dataclass(frozen=True)
class Shaped:
    """A root field's finished answer: the execution context puts it in the response as it is."""

    value: object


class Selected(NamedTuple):
    """One response key of a record's selection: a field, `__typename`, or a navigation (a tuple:
    a page's query makes one per field it selects)."""

    key: str
    field: str | None = None
    constant: str | None = None
    link: Navigation | None = None
    """The navigation, named where the records hold its related records (`expansion name`)."""
    nested: tuple["Selected", ...] = ()


class _PlanCache:
    """Plans of root fields, kept for the operation they belong to: a client sends the same few
    queries with new variables, and planning a selection of hundreds of fields took most of a key
    lookup. A plan depends on the field's selection and on the variables used inside it (in nested
    arguments and directives), not on the root field's own arguments, which are applied per request.
    An entry holds its operation, so the operation's id is not reused while the entry lives."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._entries: OrderedDict[tuple, tuple[object, object]] = OrderedDict()
        self._lock = threading.Lock()

    def plan(self, info: GraphQLResolveInfo, build: Callable[[], Any]) -> Any:
        # The field's nodes: which of them are active depends on @include/@skip above the field.
        nodes = (id(info.operation), info.path.key, *(id(node) for node in info.field_nodes))
        inside = self._cached(nodes, info, lambda: _variables_inside(info))
        values = repr([(name, info.variable_values.get(name)) for name in sorted(inside)])
        return self._cached((*nodes, values), info, build)

    def _cached(self, key: tuple, info: GraphQLResolveInfo, build: Callable[[], Any]) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] is info.operation:
                self._entries.move_to_end(key)
                return entry[1]
        value = build()
        with self._lock:
            self._entries[key] = (info.operation, value)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value


class _VariableNames(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_variable(self, node: VariableNode, *_: object) -> None:
        self.names.add(node.name.value)


def _variables_inside(info: GraphQLResolveInfo) -> frozenset[str]:
    """Variables the field's selection may read: those under its selection sets, and in any fragment."""
    found = _VariableNames()
    for node in info.field_nodes:
        if node.selection_set is not None:
            visit(node.selection_set, found)
    for fragment in info.fragments.values():
        visit(fragment, found)
    return frozenset(found.names)


_PLANS = _PlanCache()


def failure(message: str, code: str, **extensions: object) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extensions})


def limit_exceeded(message: str, limit: str) -> GraphQLError:
    return failure(message, "LIMIT_EXCEEDED", limit=limit)


def record_resolver(entity: EntitySet) -> Callable:
    def resolve_record(_: object, info: GraphQLResolveInfo, **arguments: object) -> Shaped | None:
        context: RequestContext = info.context

        def plan() -> tuple[CollectionQuery, tuple[Selected, ...], bool]:
            query, (selection,) = _Planner(info).records(entity, _object_type(info), [("", info.field_nodes)], {}, 0)
            return query, selection, _is_document(selection, query)

        context.budget.enter_root_field()
        query, selection, whole = _PLANS.plan(info, plan)
        context.budget.charge(1 + _cost_per_record(query))
        (key,) = arguments.values()
        found = _reading(read_entity, context.backend, query, key, context.now)
        return None if found is None else Shaped(_answer(found, selection, whole))

    return resolve_record


def connection_resolver(entity: EntitySet) -> Callable:
    def resolve_connection(_: object, info: GraphQLResolveInfo, **arguments: object) -> Shaped:
        return Shaped(_connection(info, entity, arguments))

    return resolve_connection


@dataclass(frozen=True)
class _ConnectionPlan:
    """What a connection field's selection asks for, apart from its own arguments."""

    query: CollectionQuery
    parts: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...]
    """(response key, field, and for `pageInfo` and `edges` their own (response key, field)s)."""
    selections: dict[str, tuple[Selected, ...]]
    """The record selection under each `nodes` and `edges/node`, by their response keys' path."""
    whole: dict[str, bool]
    type_names: dict[str, str]


def _connection_plan(info: GraphQLResolveInfo, entity: EntitySet) -> _ConnectionPlan:
    connection_type = _object_type(info)
    inner: dict[str, GraphQLObjectType] = {
        name: get_named_type(connection_type.fields[name].type)  # type: ignore[misc]  # object types
        for name in ("edges", "nodes", "pageInfo")
    }
    parts = []
    groups: list[tuple[str, Sequence[FieldNode]]] = []
    for key, nodes in _collect(info, connection_type, info.field_nodes).items():
        name = nodes[0].name.value
        below: dict = _collect(info, inner[name], nodes) if name in ("edges", "pageInfo") else {}
        parts.append((key, name, tuple((k, n[0].name.value) for k, n in below.items())))
        if name == "nodes":
            groups.append((key, nodes))
        for edge_key, edge_nodes in below.items() if name == "edges" else ():
            if edge_nodes[0].name.value == "node":
                groups.append((f"{key}/{edge_key}", edge_nodes))
    query, selection_list = _Planner(info).records(entity, inner["nodes"], groups, {}, 0)
    selections = {prefix: selection for (prefix, _), selection in zip(groups, selection_list, strict=True)}
    return _ConnectionPlan(
        query=query,
        parts=tuple(parts),
        selections=selections,
        whole={prefix: _is_document(selection, query) for prefix, selection in selections.items()},
        type_names={
            "connection": connection_type.name,
            "edge": inner["edges"].name,
            "pageInfo": inner["pageInfo"].name,
        },
    )


def _connection(info: GraphQLResolveInfo, entity: EntitySet, arguments: Mapping) -> dict:
    context: RequestContext = info.context
    context.budget.enter_root_field()
    plan: _ConnectionPlan = _PLANS.plan(info, lambda: _connection_plan(info, entity))
    query = _with_arguments(plan.query, arguments)
    selections, whole = plan.selections, plan.whole
    first = _first(arguments.get("first"), DEFAULT_FIRST) or 0
    counted = any(name == "totalCount" for _, name, _ in plan.parts)
    context.budget.charge(first * (1 + _cost_per_record(query)) + (COUNT_COST if counted else 0))
    after = arguments.get("after")
    values = _cursor_values(query, after, context.cursor_key) if after is not None else None
    page = _reading(read_page, context.backend, query, size=first, after=values, now=context.now)
    rows, heads = page.rows, page.heads
    if len(rows) < len(heads):  # rows read by key: some were gone by then
        served = {row[entity.key] for row in rows}  # type: ignore[index]  # documents are read with their heads
        heads = [head for head in heads if head[entity.key] in served]

    def cursor(head: dict) -> str:
        return encode_token(query, head, context.cursor_key)

    page_info: dict[str, Callable[[], object]] = {  # cursors are signed only when asked for
        "hasNextPage": lambda: page.last is not None,
        "hasPreviousPage": lambda: False,
        "startCursor": lambda: cursor(heads[0]) if heads else None,
        "endCursor": lambda: cursor(heads[-1]) if heads else None,
        "__typename": lambda: plan.type_names["pageInfo"],
    }
    answer: dict[str, object] = {}
    for key, name, below in plan.parts:
        if name == "totalCount":
            answer[key] = _reading(read_count, context.backend, query, context.now)
        elif name == "pageInfo":
            answer[key] = {info_key: page_info[info_name]() for info_key, info_name in below}
        elif name == "nodes":
            answer[key] = [_answer(row, selections[key], whole[key]) for row in rows]
        elif name == "edges":
            answer[key] = [
                {
                    edge_key: (
                        cursor(head)
                        if edge_name == "cursor"
                        else plan.type_names["edge"]
                        if edge_name == "__typename"
                        else _answer(row, selections[f"{key}/{edge_key}"], whole[f"{key}/{edge_key}"])
                    )
                    for edge_key, edge_name in below
                }
                for head, row in zip(heads, rows, strict=True)
            ]
        else:
            answer[key] = plan.type_names["connection"]
    return answer


def _answer(row: dict | Document, selection: Sequence[Selected], whole: bool) -> object:
    """One record as answered: a stored document as it is where the selection is the document
    (`whole`, from `_is_document`), else shaped from OData JSON."""
    if isinstance(row, Document):
        if whole:
            return orjson.Fragment(row.json)
        return shaped(orjson.loads(row.json), selection)
    return shaped(orjson.loads(dumps(row)), selection)


def _is_document(selection: Sequence[Selected], query: CollectionQuery) -> bool:
    """Whether `selection` asks for exactly what a stored document of `query`'s records holds."""
    names = (*query.entity.fields, *(expansion.link.name for expansion in query.expand))
    if tuple(item.key for item in selection) != names:
        return False
    links = [item for item in selection if item.link is not None]
    if any(item.field != item.key for item in selection if item.link is None):
        return False
    return all(
        item.link == expansion.link and _is_document(item.nested, expansion.query)
        for item, expansion in zip(links, query.expand, strict=True)
    )


def shaped(record: dict, selection: Sequence[Selected]) -> dict:
    """A record (OData JSON values) as the selection asks for it, in the selection's order."""
    answer: dict[str, object] = {}
    for item in selection:
        if item.link is None:
            answer[item.key] = item.constant if item.constant is not None else record.get(item.field)
            continue
        related = record.get(item.link.name)
        if item.link.many:
            answer[item.key] = [shaped(child, item.nested) for child in related or ()]
        else:
            answer[item.key] = None if related is None else shaped(related, item.nested)
    return answer


class _Planner:
    """Turns selections (each a group of field nodes under a path) into one CollectionQuery."""

    def __init__(self, info: GraphQLResolveInfo) -> None:
        self.info = info

    def records(
        self,
        entity: EntitySet,
        object_type: GraphQLObjectType,
        groups: Sequence[tuple[str, Sequence[FieldNode]]],
        arguments: Mapping,
        level: int,
    ) -> tuple[CollectionQuery, list[tuple[Selected, ...]]]:
        fields: list[str] = []
        expansions: list[Expansion] = []
        selections = [
            self._selection(entity, object_type, nodes, prefix, level, fields, expansions) for prefix, nodes in groups
        ]
        # Where the backend stores whole records as documents, reading a record's document and
        # picking fields from it is cheaper than a second query for the fields alone.
        if self.info.context.backend.stores_documents(entity):
            fields = list(entity.fields)
        query = CollectionQuery(
            entity=entity,
            select=tuple(dict.fromkeys([*fields, entity.key])),
            top=_first(arguments.get("first"), None) if level else None,
            expand=tuple(expansions),
        )
        return _with_arguments(query, arguments), selections

    def _selection(
        self,
        entity: EntitySet,
        object_type: GraphQLObjectType,
        nodes: Sequence[FieldNode],
        prefix: str,
        level: int,
        fields: list[str],
        expansions: list[Expansion],
    ) -> tuple[Selected, ...]:
        links = {navigation_field(link.name): link for link in entity.navigation.values()}
        selection = []
        for key, field_nodes in _collect(self.info, object_type, nodes).items():
            name = field_nodes[0].name.value
            if name == "__typename":
                selection.append(Selected(key, constant=object_type.name))
            elif name in entity.fields:
                fields.append(name)
                selection.append(Selected(key, field=name))
            elif name in links:
                if level >= MAX_NESTING:
                    raise limit_exceeded(
                        f"related records nest at most {MAX_NESTING} levels under a root field", "depth"
                    )
                path = f"{prefix}/{key}"
                taken = key.startswith("__") or key in entity.fields or any(e.link.name == key for e in expansions)
                # Held under its response key (so a stored document with it spliced in is the answer
                # as it is), unless that name is taken in the records of this query.
                link = dataclasses.replace(links[name], name=f"{links[name].name}@{path}" if taken else key)
                definition = object_type.fields[name]
                arguments = get_argument_values(definition, field_nodes[0], self.info.variable_values)
                target_type: GraphQLObjectType = get_named_type(definition.type)  # type: ignore[assignment]
                nested, (nested_selection,) = self.records(
                    entity_sets()[link.resource], target_type, [(path, field_nodes)], arguments, level + 1
                )
                expansions.append(Expansion(link, nested))
                selection.append(Selected(key, link=link, nested=nested_selection))
        return tuple(selection)


def _object_type(info: GraphQLResolveInfo) -> GraphQLObjectType:
    return get_named_type(info.return_type)  # type: ignore[return-value]  # root fields return object types


def _collect(info: GraphQLResolveInfo, of_type: GraphQLObjectType, nodes: Sequence[FieldNode]) -> dict:
    """The fields selected under `nodes` (fragments and @include/@skip resolved), by response key."""
    return collect_sub_fields(info.schema, info.fragments, info.variable_values, of_type, list(nodes))


def _with_arguments(query: CollectionQuery, arguments: Mapping) -> CollectionQuery:
    """`query` with a field's `where` and `orderBy` (the order's fields selected too: cursors hold them)."""
    order = _order(arguments.get("orderBy"), query.entity)
    where = arguments.get("where")
    try:
        tree = where_tree(where, query.entity) if where else None
    except WhereError as error:
        raise failure(f"where: {error}", "BAD_USER_INPUT") from None
    select = tuple(dict.fromkeys([*query.select, *(term.field for term in order)]))
    return dataclasses.replace(query, select=select, filter=tree, orderby=order)


def _cost_per_record(query: CollectionQuery) -> int:
    """Related records one record of `query` may bring, through every level of its expansions."""
    total = 0
    for expansion in query.expand:
        nested = expansion.query
        each = (UNBOUNDED_ESTIMATE if nested.top is None else nested.top) if expansion.link.many else 1
        total += each * (1 + _cost_per_record(nested))
    return total


def _first(value: object, default: int | None) -> int | None:
    if value is None:
        return default
    if not isinstance(value, int) or value < 0 or value > MAX_FIRST:
        raise limit_exceeded(f"first must be between 0 and {MAX_FIRST:,}, got {value}", "first")
    return value


def _order(items: Sequence[Mapping] | None, entity: EntitySet) -> tuple[OrderTerm, ...]:
    terms = []
    for item in items or ():
        given = [(name, direction) for name, direction in item.items() if direction is not None]
        if len(given) != 1:
            raise failure(
                "orderBy: give one field per item, e.g. orderBy: [{ListPrice: desc}, {ListingKey: asc}]",
                "BAD_USER_INPUT",
            )
        ((name, direction),) = given
        terms.append(OrderTerm(name, getattr(direction, "value", direction) == "desc"))
    if len({term.field for term in terms}) < len(terms):
        raise failure("orderBy names a field twice", "BAD_USER_INPUT")
    return tuple(terms)


def _cursor_values(query: CollectionQuery, cursor: str, key: bytes) -> list[object]:
    try:
        return decode_token(query, cursor, key)
    except ODataError:
        raise failure(
            "after is not a cursor this service issued for this query's order; start again without it",
            "BAD_USER_INPUT",
        ) from None


def _reading(call: Callable, *args: object, **kwargs: object):
    """A read through OData's query model, its failures in GraphQL's terms."""
    try:
        return call(*args, **kwargs)
    except ODataError as error:
        message = error.message.replace("$filter", "where")
        raise failure(message, CODES.get(error.status, "BAD_USER_INPUT")) from None
    except QueryRejected as error:
        raise failure(f"the query cannot be evaluated on this data: {error}", "BAD_USER_INPUT") from None
    except BackendUnavailable as error:
        raise failure(str(error), "SERVICE_UNAVAILABLE") from None
