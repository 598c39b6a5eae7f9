"""Server-driven paging: the `$skiptoken` of an `@odata.nextLink` is the last row's sort values.

The next page starts strictly after that row in the total order (requested order, then the key),
so rows sharing a timestamp are neither repeated nor missed, and rows written meanwhile do not
shift pages the way an offset would. The token carries a digest of the order it belongs to; a
token from another query, or one edited by hand, is a 400.
"""

import base64
import binascii
import hashlib
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


def _order_digest(query: CollectionQuery) -> str:
    order = ",".join(f"{t.field} {'desc' if t.descending else 'asc'}" for t in query.order)
    return hashlib.sha256(f"{query.entity.name}:{order}".encode()).hexdigest()[:12]


def _plain(value: object) -> object:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def encode_token(query: CollectionQuery, row: dict) -> str:
    payload = {"o": _order_digest(query), "v": [_plain(row[term.field]) for term in query.order]}
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def decode_token(query: CollectionQuery, token: str) -> list[object]:
    """The sort values a page must start after."""
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        values = payload["v"]
        if payload["o"] != _order_digest(query) or len(values) != len(query.order):
            raise ValueError("the token belongs to another order")
        return [
            None if value is None else READERS.get(query.entity.fields[term.field].type, lambda v: v)(value)
            for term, value in zip(query.order, values, strict=True)
        ]
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError, ArithmeticError):
        raise ODataError(
            400, "$skiptoken is not one this service issued for this query; start again without it", target="$skiptoken"
        ) from None


def page_size(query: CollectionQuery, preferred: int | None) -> int:
    """Rows in this page: `$top`, or else the default, capped by the `odata.maxpagesize` preference and the server."""
    wanted = query.top if query.top is not None else DEFAULT_PAGE_SIZE if preferred is None else MAX_PAGE_SIZE
    return min(wanted, preferred or MAX_PAGE_SIZE, MAX_PAGE_SIZE)
