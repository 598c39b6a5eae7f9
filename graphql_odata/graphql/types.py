"""The GraphQL schema, generated from the entity model as `$metadata` is: a mapping file changed is a
schema changed, with no code.

Per resource (`Property` here): the object type with RESO's field names and the Data Dictionary's
definitions, navigation fields (`media`, `listAgent`) with their own `where`, `orderBy`, `first`;
`PropertyWhere` (typed comparison operators per field, `_and`, `_or`, `_not`, related records);
`PropertyOrderBy`; a Relay connection `PropertyConnection`; and two root fields, by key
(`property(listingKey: ...)`) and as a connection (`properties(where:, orderBy:, first:, after:)`).
"""

import decimal
from functools import cache

import graphene
from graphql import GraphQLError
from graphql.language import FloatValueNode, IntValueNode, StringValueNode, ValueNode

from conf.mappings import COLLECTION, FieldMapping, reso_description
from graphql_odata.graphql import resolve
from graphql_odata.graphql.where import navigation_field
from graphql_odata.schema import EntitySet, entity_sets


class Decimal(graphene.Scalar):
    """An exact decimal number: a JSON number with the field's digits, as the RESO Web API (OData)
    writes it; given as a number or a string of digits."""

    @staticmethod
    def serialize(value: object) -> float:
        return float(value)  # type: ignore[arg-type]  # values are numbers

    @staticmethod
    def parse_value(value: object) -> decimal.Decimal:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise GraphQLError(f"a Decimal is a number or a string of digits, not {value!r}")
        try:
            return decimal.Decimal(str(value))
        except decimal.InvalidOperation:
            raise GraphQLError(f"{value!r} is not a decimal number") from None

    @classmethod
    def parse_literal(cls, node: ValueNode, _variables: object = None) -> decimal.Decimal:
        if isinstance(node, IntValueNode | FloatValueNode | StringValueNode):
            return cls.parse_value(node.value)
        raise GraphQLError("a Decimal is a number or a string of digits")


SCALARS: dict[str, type[graphene.Scalar]] = {
    "Edm.String": graphene.String,
    "Edm.Boolean": graphene.Boolean,
    "Edm.Int32": graphene.Int,
    "Edm.Int64": graphene.BigInt,
    "Edm.Decimal": Decimal,
    "Edm.Double": graphene.Float,
    "Edm.Date": graphene.Date,
    "Edm.DateTimeOffset": graphene.DateTime,
}
IRREGULAR_NAMES = {"Media": ("mediaItem", "media"), "Contacts": ("contact", "contacts")}
"""Root field names (by key, collection) where English does not follow `record`/`records`."""


class OrderDirection(graphene.Enum):
    """Ascending puts nulls first, descending last (OData's order, so cursors and nextLinks agree)."""

    asc = "asc"
    desc = "desc"


class PageInfo(graphene.ObjectType):
    """Relay's page information. Paging is forward only: `hasPreviousPage` is always false."""

    hasNextPage = graphene.NonNull(graphene.Boolean)
    hasPreviousPage = graphene.NonNull(graphene.Boolean)
    startCursor = graphene.String()
    endCursor = graphene.String()


def root_field_names(entity: EntitySet) -> tuple[str, str]:
    """(by key, collection): `property`/`properties`, `member`/`members`, `mediaItem`/`media`."""
    if entity.name in IRREGULAR_NAMES:
        return IRREGULAR_NAMES[entity.name]
    one = navigation_field(entity.name)
    return one, one[:-1] + "ies" if one.endswith("y") else one + "s"


def key_argument(entity: EntitySet) -> str:
    return navigation_field(entity.key)


def _description(entity: EntitySet, field: FieldMapping) -> str:
    described = reso_description(entity.name, field.name) or (
        "A local field of this service (not in the RESO Data Dictionary)." if field.is_local else ""
    )
    if field.lookup:
        described += f" Values of the RESO lookup {field.lookup} (the Lookup resource lists them)."
    return described.strip()


def _comparison(scalar: type[graphene.Scalar], *, ordered: bool, text: bool) -> type[graphene.InputObjectType]:
    """The operators `where` offers on fields of one scalar type."""
    fields: dict[str, object] = {
        "_eq": graphene.InputField(scalar, description="Equal (null: is null)."),
        "_neq": graphene.InputField(scalar, description="Not equal (a null field is not equal to a value)."),
        "_in": graphene.InputField(graphene.List(graphene.NonNull(scalar)), description="One of these values."),
        "_nin": graphene.InputField(graphene.List(graphene.NonNull(scalar)), description="None of these values."),
        "_is_null": graphene.InputField(graphene.Boolean, description="Whether the field has no value."),
    }
    if ordered:
        for name, meaning in (("_gt", "Greater than"), ("_gte", "At least"), ("_lt", "Less than"), ("_lte", "At most")):
            fields[name] = graphene.InputField(scalar, description=f"{meaning} (false for a null field).")
    if text:
        fields["_like"] = graphene.InputField(
            graphene.String, description="SQL LIKE: % any run of characters, _ one; a backslash escapes them."
        )
        fields["_ilike"] = graphene.InputField(graphene.String, description="As _like, ignoring letter case.")
    name = f"{scalar._meta.name}Comparison"
    return type(name, (graphene.InputObjectType,), {**fields, "Meta": type("Meta", (), {"name": name})})


class StringListComparison(graphene.InputObjectType):
    """Operators on multi-select lookups (lists of values)."""

    _contains_any = graphene.List(graphene.NonNull(graphene.String), description="Has at least one of these values.")
    _contains_all = graphene.List(graphene.NonNull(graphene.String), description="Has every one of these values.")
    _is_empty = graphene.Boolean(description="Whether the list has no value.")


@cache
def _comparisons() -> dict[str, type[graphene.InputObjectType]]:
    return {
        kind: _comparison(scalar, ordered=scalar is not graphene.Boolean, text=scalar is graphene.String)
        for kind, scalar in SCALARS.items()
    } | {COLLECTION: StringListComparison}


def _field_type(field: FieldMapping) -> object:
    if field.is_collection:
        return graphene.List(graphene.NonNull(graphene.String))
    return SCALARS[field.type]


class _Types:
    """Every generated type, made once, looked up by name (navigation fields refer to types not yet made)."""

    def __init__(self) -> None:
        self.objects: dict[str, type[graphene.ObjectType]] = {}
        self.wheres: dict[str, type[graphene.InputObjectType]] = {}
        self.orders: dict[str, type[graphene.InputObjectType]] = {}
        self.connections: dict[str, type[graphene.ObjectType]] = {}
        for entity in entity_sets().values():
            self.wheres[entity.name] = self._where(entity)
            self.orders[entity.name] = self._order(entity)
            self.objects[entity.name] = self._object(entity)
            self.connections[entity.name] = self._connection(entity)

    def _object(self, entity: EntitySet) -> type[graphene.ObjectType]:
        attributes: dict[str, object] = {
            field.name: graphene.Field(
                graphene.NonNull(_field_type(field)) if field.name == entity.key else _field_type(field),
                description=_description(entity, field),
            )
            for field in entity.fields.values()
        }
        for link in entity.navigation.values():
            target = link.resource
            name = navigation_field(link.name)
            if link.many:
                attributes[name] = graphene.Field(
                    graphene.NonNull(graphene.List(graphene.NonNull(lambda target=target: self.objects[target]))),
                    where=graphene.Argument(lambda target=target: self.wheres[target]),
                    orderBy=graphene.Argument(
                        graphene.List(graphene.NonNull(lambda target=target: self.orders[target]))
                    ),
                    first=graphene.Int(description="At most this many related records per record (default: all)."),
                    description=f"The {target} records related to this one ({link.remote} = {link.local}).",
                )
            else:
                attributes[name] = graphene.Field(
                    lambda target=target: self.objects[target],
                    description=f"The {target} this record's {link.local} names.",
                )
        meta = type("Meta", (), {"name": entity.name, "description": entity.description})
        return type(entity.name, (graphene.ObjectType,), {**attributes, "Meta": meta})

    def _where(self, entity: EntitySet) -> type[graphene.InputObjectType]:
        name = f"{entity.name}Where"
        comparisons = _comparisons()
        fields: dict[str, object] = {
            field.name: graphene.InputField(comparisons[field.type], description=_description(entity, field))
            for field in entity.fields.values()
        }
        for link in entity.navigation.values():
            fields[navigation_field(link.name)] = graphene.InputField(
                lambda target=link.resource: self.wheres[target],
                description=f"Holds when a related {link.resource} record matches.",
            )
        fields["_and"] = graphene.InputField(graphene.List(graphene.NonNull(lambda: self.wheres[entity.name])))
        fields["_or"] = graphene.InputField(graphene.List(graphene.NonNull(lambda: self.wheres[entity.name])))
        fields["_not"] = graphene.InputField(lambda: self.wheres[entity.name])
        meta = type("Meta", (), {"name": name, "description": f"Conditions on {entity.name} records; all must hold."})
        return type(name, (graphene.InputObjectType,), {**fields, "Meta": meta})

    def _order(self, entity: EntitySet) -> type[graphene.InputObjectType]:
        name = f"{entity.name}OrderBy"
        fields = {
            field.name: graphene.InputField(OrderDirection)
            for field in entity.fields.values()
            if not field.is_collection
        }
        description = "One field and its direction per item of orderBy; the key breaks ties."
        meta = type("Meta", (), {"name": name, "description": description})
        return type(name, (graphene.InputObjectType,), {**fields, "Meta": meta})

    def _connection(self, entity: EntitySet) -> type[graphene.ObjectType]:
        node = self.objects[entity.name]
        edge = type(
            f"{entity.name}Edge",
            (graphene.ObjectType,),
            {
                "cursor": graphene.NonNull(
                    graphene.String, description="Where the next page starts, after this record."
                ),
                "node": graphene.NonNull(node),
            },
        )
        return type(
            f"{entity.name}Connection",
            (graphene.ObjectType,),
            {
                "totalCount": graphene.NonNull(graphene.Int, description="Records matching `where`, on every page."),
                "pageInfo": graphene.NonNull(PageInfo),
                "edges": graphene.NonNull(graphene.List(graphene.NonNull(edge))),
                "nodes": graphene.NonNull(graphene.List(graphene.NonNull(node))),
            },
        )


@cache
def graphql_schema() -> graphene.Schema:
    types = _Types()
    fields: dict[str, object] = {}
    for entity in entity_sets().values():
        one, many = root_field_names(entity)
        fields[one] = graphene.Field(
            types.objects[entity.name],
            args={key_argument(entity): graphene.Argument(graphene.NonNull(graphene.String))},
            description=f"One {entity.name} record by its {entity.key} (null when there is none).",
            resolver=resolve.record_resolver(entity),
        )
        fields[many] = graphene.Field(
            graphene.NonNull(types.connections[entity.name]),
            where=graphene.Argument(types.wheres[entity.name]),
            orderBy=graphene.Argument(graphene.List(graphene.NonNull(types.orders[entity.name]))),
            first=graphene.Int(description="Records in this page: default 100, at most 1,000."),
            after=graphene.String(description="A cursor: the page starts after its record (an OData $skiptoken too)."),
            description=f"{entity.name} records as a Relay connection: {entity.description}",
            resolver=resolve.connection_resolver(entity),
        )
    query = type("Query", (graphene.ObjectType,), fields)
    return graphene.Schema(query=query, auto_camelcase=False)
