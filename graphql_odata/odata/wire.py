"""OData JSON on the wire: one serializer for rows, and records the snapshot already serialized."""

from decimal import Decimal

import orjson


class Document:
    """A record the snapshot stored as OData JSON (`__document`), with expanded navigation spliced in."""

    __slots__ = ("json",)

    def __init__(self, json: bytes) -> None:
        self.json = json

    def with_fields(self, fields: dict[str, object]) -> "Document":
        if not fields:
            return self
        extra = b"".join(b',"' + name.encode() + b'":' + dumps(value) for name, value in fields.items())
        return Document(self.json[:-1] + (extra[1:] if self.json == b"{}" else extra) + b"}")

    def with_leading(self, fields: dict[str, object]) -> "Document":
        """The document with `fields` (annotations such as `@odata.context`) first."""
        lead = dumps(fields)
        return Document(lead[:-1] + (b"}" if self.json == b"{}" else b"," + self.json[1:]))


def _default(value: object) -> object:
    if isinstance(value, Document):
        return orjson.Fragment(value.json)
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(payload: object) -> bytes:
    return orjson.dumps(payload, default=_default, option=orjson.OPT_UTC_Z)
