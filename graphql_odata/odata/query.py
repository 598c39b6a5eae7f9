"""Collection query options, checked against the resource's mapping, compiled with sqlglot.

Values reach SQL only as bound parameters; names only after they matched the mapping.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from sqlglot import exp

from conf.mappings import ResourceMapping
from graphql_odata.odata.errors import ODataError

MAX_TOP = 1000
DEFAULT_TOP = 100
SUPPORTED_OPTIONS = {"$top", "$select"}
KNOWN_OPTIONS = {
    "$top",
    "$skip",
    "$select",
    "$filter",
    "$orderby",
    "$count",
    "$expand",
    "$search",
    "$format",
    "$skiptoken",
    "$apply",
}


@dataclass(frozen=True)
class CollectionQuery:
    resource: ResourceMapping
    select: tuple[str, ...]
    top: int


def parse_collection_options(options: Mapping[str, str], resource: ResourceMapping) -> CollectionQuery:
    for name in options:
        if name.startswith("$") and name not in KNOWN_OPTIONS:
            raise ODataError(400, f"unknown system query option {name}", target=name)
        if name in KNOWN_OPTIONS and name not in SUPPORTED_OPTIONS:
            raise ODataError(501, f"system query option {name} is not supported yet", target=name)
    return CollectionQuery(
        resource=resource, select=_select(options.get("$select"), resource), top=_top(options.get("$top"))
    )


def _top(value: str | None) -> int:
    if value is None:
        return DEFAULT_TOP
    if not value.strip().isdigit():
        raise ODataError(400, f"$top must be a non-negative integer, got {value!r}", target="$top")
    top = int(value)
    if top > MAX_TOP:
        raise ODataError(400, f"$top may be at most {MAX_TOP}; page with @odata.nextLink for more", target="$top")
    return top


def _select(value: str | None, resource: ResourceMapping) -> tuple[str, ...]:
    names = [field.name for field in resource.fields]
    if value is None or value.strip() == "*":
        return tuple(names)
    chosen = [part.strip() for part in value.split(",")]
    unknown = [name for name in chosen if name not in names]
    if unknown or not all(chosen):
        raise ODataError(
            400,
            f"$select names unknown fields of {resource.resource}: {', '.join(unknown) or '(empty)'}",
            target="$select",
        )
    return tuple(dict.fromkeys(chosen))


def compile_collection(query: CollectionQuery, *, dialect: str) -> tuple[str, dict]:
    """SQL for one page of the collection, ordered by key, with `$top` bound as a parameter."""
    table = query.resource.table.split(".", 1)[1]
    tree = (
        exp.select(*(exp.column(name, quoted=True) for name in query.select))
        .from_(exp.to_table(table, quoted=True))
        .order_by(exp.Ordered(this=exp.column(query.resource.key, quoted=True)))
        .limit(exp.Placeholder(this="top"))
    )
    return tree.sql(dialect=dialect), {"top": query.top}
