"""Server-driven paging: the `$skiptoken` of an `@odata.nextLink` is the last row's sort values.

The next page starts strictly after that row in the total order (requested order, then the key),
so rows sharing a timestamp are neither repeated nor missed, and rows written meanwhile do not
shift pages the way an offset would. The token is signed with a key of the server's (HMAC over
the order it belongs to and the values): a token from another query or another server, or one
edited by hand, is a 400, and values are read as the types of the fields they belong to.
"""

import base64
import binascii
import hashlib
import hmac
from datetime import date, datetime
from decimal import Decimal

import orjson

from graphql_odata.odata.errors import ODataError
from graphql_odata.odata.query import CollectionQuery

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

READERS = {
    "Edm.Date": date.fromisoformat,
    "Edm.DateTimeOffset": datetime.fromisoformat,
    "Edm.Decimal": Decimal,
}
KINDS = {
    "Edm.String": str,
    "Edm.Date": str,
    "Edm.DateTimeOffset": str,
    "Edm.Decimal": str,
    "Edm.Boolean": bool,
    "Edm.Int32": int,
    "Edm.Int64": int,
    "Edm.Double": int | float,
}
"""What JSON kind each field type's value has in a token (decimals and timestamps as text)."""
SIGNATURE_BYTES = 16


def _order(query: CollectionQuery) -> str:
    return query.entity.name + ":" + ",".join(f"{t.field} {'desc' if t.descending else 'asc'}" for t in query.order)


def _signature(key: bytes, order: str, values: list[object]) -> str:
    signed = hmac.new(key, order.encode() + b"\n" + orjson.dumps(values), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(signed[:SIGNATURE_BYTES]).decode().rstrip("=")


def _read(kind: str, value: object) -> object:
    expected = KINDS.get(kind, str)
    if value is None:
        return None
    if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
        raise ValueError(f"a {type(value).__name__} where {kind} belongs")
    return READERS.get(kind, lambda v: v)(value)


def _plain(value: object) -> object:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def encode_token(query: CollectionQuery, row: dict, key: bytes) -> str:
    """The token of the page after `row`, signed with `key`."""
    values = [_plain(row[term.field]) for term in query.order]
    payload = {"v": values, "s": _signature(key, _order(query), values)}
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def decode_token(query: CollectionQuery, token: str, key: bytes) -> list[object]:
    """The sort values a page must start after, from a token this server signed for this query's order."""
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        values, signature = payload["v"], payload["s"]
        if not isinstance(values, list) or not isinstance(signature, str):
            raise ValueError("not a token")
        if not hmac.compare_digest(signature, _signature(key, _order(query), values)):
            raise ValueError("not signed by this server for this order")
        if len(values) != len(query.order):
            raise ValueError("the token belongs to another order")
        return [
            _read(query.entity.fields[term.field].type, value) for term, value in zip(query.order, values, strict=True)
        ]
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError, ArithmeticError):
        raise ODataError(
            400, "$skiptoken is not one this service issued for this query; start again without it", target="$skiptoken"
        ) from None


def page_size(query: CollectionQuery, preferred: int | None) -> int:
    """Rows in this page: `$top`, or else the default, capped by the `odata.maxpagesize` preference and the server."""
    wanted = query.top if query.top is not None else DEFAULT_PAGE_SIZE if preferred is None else MAX_PAGE_SIZE
    return min(wanted, preferred or MAX_PAGE_SIZE, MAX_PAGE_SIZE)
