"""The RESO Web API collections: one router serves every resource of the mapping files."""

from decimal import Decimal

import orjson
from fastapi import APIRouter, Request, Response

from conf.mappings import resource_mappings
from graphql_odata.backends.snapshot import BackendUnavailable
from graphql_odata.deps import BackendDep
from graphql_odata.odata.errors import ODATA_VERSION, ODataError
from graphql_odata.odata.query import compile_collection, parse_collection_options

router = APIRouter(prefix="/odata", tags=["OData"])


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def odata_json(payload: dict, status: int = 200) -> Response:
    body = orjson.dumps(payload, default=_json_default, option=orjson.OPT_UTC_Z)
    return Response(
        body,
        status_code=status,
        media_type="application/json;odata.metadata=minimal",
        headers={"OData-Version": ODATA_VERSION},
    )


def service_root(request: Request) -> str:
    return str(request.url_for("service_document")).rstrip("/")


@router.get("", name="service_document", summary="OData service document: the resources served")
def service_document(request: Request) -> Response:
    root = service_root(request)
    resources = [{"name": name, "kind": "EntitySet", "url": name} for name in resource_mappings()]
    return odata_json({"@odata.context": f"{root}/$metadata", "value": resources})


@router.get("/{resource}", summary="A RESO resource collection ($top, $select)")
def collection(resource: str, request: Request, backend: BackendDep) -> Response:
    mapping = resource_mappings().get(resource)
    if mapping is None:
        raise ODataError(404, f"no resource named {resource!r}; see the service document at /odata", target=resource)
    query = parse_collection_options(request.query_params, mapping)
    sql, parameters = compile_collection(query, dialect=backend.dialect)
    try:
        columns, rows = backend.query(sql, parameters)
    except BackendUnavailable as error:
        raise ODataError(503, str(error), code="ServiceUnavailable") from None
    selection = "" if len(query.select) == len(mapping.fields) else f"({','.join(query.select)})"
    return odata_json(
        {
            "@odata.context": f"{service_root(request)}/$metadata#{resource}{selection}",
            "value": [dict(zip(columns, row, strict=True)) for row in rows],
        }
    )
