"""Root fields read through OData's query model: the selection under a root field becomes one
`CollectionQuery` (fields, `where`, order, `first`, and each navigation field as an expansion with
its own arguments), read keys first like an OData request. Related records come per level, for the
whole page at once: a page of listings with media, agent and office is one query per level,
never one per record.
"""

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from graphql import GraphQLError, GraphQLObjectType, GraphQLResolveInfo, get_named_type
from graphql.execution.collect_fields import collect_sub_fields
from graphql.execution.values import get_argument_values
from graphql.language import FieldNode

from graphql_odata.backends.base import Backend, BackendUnavailable, QueryRejected
from graphql_odata.graphql.where import WhereError, navigation_field, where_tree
from graphql_odata.odata.errors import ODataError
from graphql_odata.odata.fetch import read_count, read_entity, read_page
from graphql_odata.odata.paging import decode_token, encode_token
from graphql_odata.odata.query import CollectionQuery, Expansion, OrderTerm
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
CODES = {400: "BAD_USER_INPUT", 404: "NOT_FOUND", 503: "SERVICE_UNAVAILABLE"}


@dataclass(frozen=True)
class RequestContext:
    backend: Backend
    cursor_key: bytes
    """The key OData's `$skiptoken`s are signed with: a cursor is one."""
    now: datetime


def failure(message: str, code: str, **extensions: object) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extensions})


def limit_exceeded(message: str, limit: str) -> GraphQLError:
    return failure(message, "LIMIT_EXCEEDED", limit=limit)


def expansion_key(link_name: str, response_key: str) -> str:
    """Where a record holds the related records of one navigation field under one alias (the same
    navigation may be asked for twice, with different arguments)."""
    return f"{link_name}@{response_key}"


def related_of(record: dict, link_name: str, info: GraphQLResolveInfo) -> object:
    return record[expansion_key(link_name, info.path.key)]


def record_resolver(entity: EntitySet) -> Callable:
    def resolve_record(_: object, info: GraphQLResolveInfo, **arguments: object) -> dict | None:
        context: RequestContext = info.context
        query = _record_query(info, entity, _object_type(info), info.field_nodes, {}, level=0)
        (key,) = arguments.values()
        return _reading(read_entity, context.backend, query, key, context.now)

    return resolve_record


def connection_resolver(entity: EntitySet) -> Callable:
    def resolve_connection(_: object, info: GraphQLResolveInfo, **arguments: object) -> dict:
        return _connection(info, entity, arguments)

    return resolve_connection


def _connection(info: GraphQLResolveInfo, entity: EntitySet, arguments: Mapping) -> dict:
    context: RequestContext = info.context
    connection_type = _object_type(info)
    parts = _collect(info, connection_type, info.field_nodes)
    node_fields: list[FieldNode] = list(parts.get("nodes", []))
    edge_type = get_named_type(connection_type.fields["edges"].type)
    for edges in parts.get("edges", []):
        for node in _collect(info, edge_type, [edges]).get("node", []):
            node_fields.append(node)
    node_type = get_named_type(connection_type.fields["nodes"].type)
    query = _record_query(info, entity, node_type, node_fields, arguments, level=0)
    first = _first(arguments.get("first"), "first", DEFAULT_FIRST) or 0
    cost = first * (1 + _cost_per_record(query))
    if cost > MAX_COST:
        raise limit_exceeded(
            f"this query may read {cost:,} records; at most {MAX_COST:,}: ask for fewer with first, "
            "on the connection and on nested lists",
            "cost",
        )
    after = arguments.get("after")
    values = _cursor_values(query, after, context.cursor_key) if after is not None else None
    page = _reading(read_page, context.backend, query, size=first, after=values, now=context.now)
    rows: list[dict] = page.rows  # type: ignore[assignment]  # GraphQL reads rows, never documents
    cursors = [encode_token(query, row, context.cursor_key) for row in rows] if rows else []
    connection = {
        "edges": [{"cursor": cursor, "node": row} for cursor, row in zip(cursors, rows, strict=True)],
        "nodes": rows,
        "pageInfo": {
            "hasNextPage": page.last is not None,
            "hasPreviousPage": False,
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
        },
    }
    if "totalCount" in {node.name.value for nodes in parts.values() for node in nodes}:
        connection["totalCount"] = _reading(read_count, context.backend, query, context.now)
    return connection


def _object_type(info: GraphQLResolveInfo) -> GraphQLObjectType:
    return get_named_type(info.return_type)  # type: ignore[return-value]  # root fields return object types


def _collect(info: GraphQLResolveInfo, of_type: GraphQLObjectType, nodes: Sequence[FieldNode]) -> dict:
    """The fields selected under `nodes` (fragments and @include/@skip resolved), by response key."""
    return collect_sub_fields(info.schema, info.fragments, info.variable_values, of_type, list(nodes))


def _record_query(
    info: GraphQLResolveInfo,
    entity: EntitySet,
    object_type: GraphQLObjectType,
    nodes: Sequence[FieldNode],
    arguments: Mapping,
    *,
    level: int,
) -> CollectionQuery:
    links = {navigation_field(link.name): link for link in entity.navigation.values()}
    selected: list[str] = []
    expansions = []
    for response_key, field_nodes in _collect(info, object_type, nodes).items():
        name = field_nodes[0].name.value
        if name in entity.fields:
            selected.append(name)
        elif name in links:
            if level >= MAX_NESTING:
                raise limit_exceeded(f"related records nest at most {MAX_NESTING} levels under a root field", "depth")
            link = links[name]
            definition = object_type.fields[name]
            nested_arguments = get_argument_values(definition, field_nodes[0], info.variable_values)
            target = entity_sets()[link.resource]
            nested = _record_query(
                info, target, get_named_type(definition.type), field_nodes, nested_arguments, level=level + 1
            )
            keyed = dataclasses.replace(link, name=expansion_key(link.name, response_key))
            expansions.append(Expansion(keyed, nested))
    order = _order(arguments.get("orderBy"), entity)
    where = arguments.get("where")
    try:
        tree = where_tree(where, entity) if where else None
    except WhereError as error:
        raise failure(f"where: {error}", "BAD_USER_INPUT") from None
    return CollectionQuery(
        entity=entity,
        select=tuple(dict.fromkeys([*selected, *(term.field for term in order), entity.key])),
        filter=tree,
        orderby=order,
        top=_first(arguments.get("first"), "first", None) if level else None,
        expand=tuple(expansions),
        documents=False,
    )


def _cost_per_record(query: CollectionQuery) -> int:
    """Related records one record of `query` may bring, through every level of its expansions."""
    total = 0
    for expansion in query.expand:
        nested = expansion.query
        each = (UNBOUNDED_ESTIMATE if nested.top is None else nested.top) if expansion.link.many else 1
        total += each * (1 + _cost_per_record(nested))
    return total


def _first(value: object, name: str, default: int | None) -> int | None:
    if value is None:
        return default
    if not isinstance(value, int) or value < 0 or value > MAX_FIRST:
        raise limit_exceeded(f"{name} must be between 0 and {MAX_FIRST:,}, got {value}", "first")
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
