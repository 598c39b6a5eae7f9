"""The RESO Web API: service document, `$metadata`, collections, entities by key, `/$count`."""

import re
from datetime import UTC, datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response

from graphql_odata.backends.base import BackendUnavailable, QueryRejected
from graphql_odata.deps import BackendDep, require_client
from graphql_odata.odata.errors import ODATA_VERSION, ODataError
from graphql_odata.odata.fetch import read_count, read_entity, read_page
from graphql_odata.odata.metadata import metadata_json, metadata_xml
from graphql_odata.odata.paging import MAX_PAGE_SIZE, decode_token, encode_token, page_size
from graphql_odata.odata.query import CollectionQuery, entity_set, parse_key, parse_query
from graphql_odata.odata.wire import Document, dumps
from graphql_odata.schema import entity_sets

router = APIRouter(prefix="/odata", tags=["OData"], dependencies=[Depends(require_client)])

ENTITY_BY_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\((.*)\)$", re.DOTALL)
MAX_PAGE_PREFERENCE = re.compile(r"(?:^|[,;\s])(?:odata\.)?maxpagesize\s*=\s*([0-9]+)", re.IGNORECASE)
SAFE_IN_LINKS = "$,()'*:/"


def odata_json(payload: dict | Document, status: int = 200, headers: dict | None = None) -> Response:
    body = payload.json if isinstance(payload, Document) else dumps(payload)
    return Response(
        body,
        status_code=status,
        media_type="application/json;odata.metadata=minimal",
        headers={"OData-Version": ODATA_VERSION, **(headers or {})},
    )


def service_root(request: Request) -> str:
    return str(request.url_for("service_document")).rstrip("/")


def _run(call, *args, **kwargs):
    """A backend call with its failures in OData terms: data it cannot evaluate is a 400, no backend a 503."""
    try:
        return call(*args, **kwargs)
    except QueryRejected as error:
        raise ODataError(400, f"the query cannot be evaluated on this data: {error}") from None
    except BackendUnavailable as error:
        raise ODataError(503, str(error)) from None


@router.get("", name="service_document", summary="OData service document: the resources served")
@router.get("/", include_in_schema=False)
def service_document(request: Request) -> Response:
    root = service_root(request)
    resources = [{"name": name, "kind": "EntitySet", "url": name} for name in entity_sets()]
    return odata_json({"@odata.context": f"{root}/$metadata", "value": resources})


@router.get("/$metadata", summary="CSDL of every resource (XML; JSON with $format=json)")
def metadata(request: Request) -> Response:
    wanted = request.query_params.get("$format") or request.headers.get("accept", "")
    wants_json = "json" in wanted.lower() and "xml" not in wanted.lower()
    if request.query_params.get("$format") and not wants_json and "xml" not in wanted.lower():
        raise ODataError(400, "$format for $metadata is application/xml or application/json", target="$format")
    body, media_type = (metadata_json(), "application/json") if wants_json else (metadata_xml(), "application/xml")
    return Response(body, media_type=media_type, headers={"OData-Version": ODATA_VERSION})


@router.get("/{resource}/$count", summary="The number of records matching $filter, as plain text")
def count(resource: str, request: Request, backend: BackendDep) -> Response:
    query = parse_query(_only(request, {"$filter"}), entity_set(resource))
    total = _run(read_count, backend, query)
    return Response(str(total), media_type="text/plain", headers={"OData-Version": ODATA_VERSION})


@router.get("/{segment}", summary="A resource collection, or one record by key: Property('K')")
def resource(segment: str, request: Request, backend: BackendDep) -> Response:
    keyed = ENTITY_BY_KEY.match(segment)
    if keyed:
        return _entity(keyed.group(1), keyed.group(2), request, backend)
    return _collection(segment, request, backend)


@router.get("/{resource}/{rest:path}", include_in_schema=False)
def unsupported_path(resource: str, rest: str) -> Response:
    """Paths this service does not serve (navigation segments, `$value`, ...), as OData 404s."""
    raise ODataError(
        404,
        f"{resource}/{rest} is not a path this service serves; use $expand to follow navigation properties",
        target=rest,
    )


def query_options(request: Request) -> dict[str, str]:
    """The request's query options; a system query option given twice is a 400 (OData allows each once)."""
    seen: set[str] = set()
    for name, _ in request.query_params.multi_items():
        if name.startswith("$") and name in seen:
            raise ODataError(400, f"{name} is given twice; a system query option may appear once", target=name)
        seen.add(name)
    return dict(request.query_params)


def _only(request: Request, allowed: set[str]) -> dict[str, str]:
    options = query_options(request)
    for name in options:
        if name.startswith("$") and name not in allowed:
            raise ODataError(400, f"{name} does not apply here", target=name)
    return options


def _entity(name: str, key_text: str, request: Request, backend) -> Response:
    entity = entity_set(name)
    key = parse_key(key_text, entity)
    query = parse_query(_only(request, {"$select", "$expand", "$format"}), entity)
    record = _run(read_entity, backend, query, key)
    if record is None:
        raise ODataError(404, f"no {entity.name} with {entity.key} {key!r}", target=entity.key)
    context = {"@odata.context": f"{service_root(request)}/$metadata#{entity.name}{_selection(query)}/$entity"}
    return odata_json(record.with_leading(context) if isinstance(record, Document) else {**context, **record})


def _collection(name: str, request: Request, backend) -> Response:
    query = parse_query(query_options(request), entity_set(name))
    preferred = _max_page_preference(request)
    size = page_size(query, preferred)
    key = request.app.state.security.skiptoken_key
    after = decode_token(query, query.skiptoken, key) if query.skiptoken is not None else None
    now = datetime.now(UTC)
    page = _run(read_page, backend, query, size=size, after=after, now=now)
    payload: dict[str, object] = {"@odata.context": f"{service_root(request)}/$metadata#{name}{_selection(query)}"}
    if query.count:
        payload["@odata.count"] = _run(read_count, backend, query, now)
    payload["value"] = page.rows
    remaining = None if query.top is None else query.top - len(page.rows)
    if page.last is not None and remaining != 0:
        payload["@odata.nextLink"] = _next_link(request, query, page.last, remaining)
    headers = {"Preference-Applied": f"odata.maxpagesize={preferred}"} if preferred else None
    return odata_json(payload, headers=headers)


def _selection(query: CollectionQuery) -> str:
    if query.selects_everything and not query.expand:
        return ""
    items = [] if query.selects_everything else list(query.select)
    items += [f"{e.link.name}()" for e in query.expand]
    return f"({','.join(items) or '*'})"


def _max_page_preference(request: Request) -> int | None:
    """The client's `odata.maxpagesize`; one beyond the server's own maximum is that maximum."""
    match = MAX_PAGE_PREFERENCE.search(", ".join(request.headers.getlist("prefer")))
    if match is None:
        return None
    digits = match.group(1).lstrip("0")
    if not digits:
        return None
    return min(int(digits), MAX_PAGE_SIZE) if len(digits) <= len(str(MAX_PAGE_SIZE)) else MAX_PAGE_SIZE


def _next_link(request: Request, query: CollectionQuery, last: dict, remaining: int | None) -> str:
    options = {k: v for k, v in request.query_params.items() if k not in {"$skip", "$skiptoken", "$top", "$count"}}
    if remaining is not None:
        options["$top"] = str(remaining)
    options["$skiptoken"] = encode_token(query, last, request.app.state.security.skiptoken_key)
    return f"{str(request.url).split('?', 1)[0]}?{urlencode(options, safe=SAFE_IN_LINKS)}"
