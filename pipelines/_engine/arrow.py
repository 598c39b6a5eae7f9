"""Arrow values built from Python values without pyarrow's pandas probe.

pyarrow imports pandas the first time it builds an array from Python values (`pa.array`, `pa.table`
of a mapping, `Table.from_pylist`, `Schema.empty_table`), to ask whether they are pandas objects. An
update to gold needs pandas for nothing else (the integrity suite after it does, for Great
Expectations), and importing it is a noticeable part of a small update in a process of its own.
Arrays built by arro3 (the Arrow library deltalake returns its results in) come into pyarrow through
the Arrow C data interface, and Arrow's JSON reader builds its own: neither asks.
"""

import io
from collections.abc import Sequence
from decimal import Decimal

import arro3.core
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.json


def array(values: Sequence | np.ndarray, kind: pa.DataType) -> pa.Array:
    """`pa.array(values, kind)` for text, integers and booleans (and other types cast from a numpy
    array's)."""
    if isinstance(values, np.ndarray):
        converted = pa.array(arro3.core.Array.from_numpy(values))
        # Not cast where the values stay as they are: the first cast loads Arrow's compute functions.
        if converted.type == kind:
            return converted
        if converted.type == pa.int64() and (pa.types.is_timestamp(kind) or pa.types.is_duration(kind)):
            return converted.view(kind)
        return converted.cast(kind)
    return pa.array(arro3.core.Array(list(values), arro3.core.DataType.from_arrow(kind)))


REPEATED_TEXT = pa.dictionary(pa.int32(), pa.string())
"""The type of `repeated` text."""


def repeated(value: str, count: int) -> pa.Array:
    """`value` `count` times, as text: dictionary-encoded (the text once, whatever `count`), which
    DuckDB reads as VARCHAR."""
    return pa.DictionaryArray.from_arrays(
        array(np.zeros(count, dtype=np.int32), pa.int32()), array([value], pa.string())
    )


JSON_ROWS = 10_000
"""Rows up to this many go through Arrow's JSON reader; more through pyarrow's own conversion, which is
faster per row, when the pandas import is a small part of the work."""


JSON_BYTES = 64 * 2**20
"""At most this much JSON is read in one block; more takes pyarrow's conversion."""


def rows_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    """`pa.Table.from_pylist(rows, schema=schema)`: through Arrow's JSON reader when the rows are few
    and every field of `schema` allows NULL and is of a type orjson writes and the reader reads back
    exactly (text, integers, booleans, decimals, timestamps of micro- or nanoseconds, and structs and
    lists of them), for values of each field's own Python type (datetimes in UTC, or in offsets of
    whole minutes, as DuckDB gives them under the engine's UTC time zone). A field a row lacks is
    NULL; a field the schema lacks is left out. Floats take pyarrow's conversion: orjson writes NaN
    and infinities as null."""
    if not rows:
        return pa.RecordBatchReader.from_batches(schema, []).read_all()
    if len(rows) > JSON_ROWS or not all(_json_readable(field) for field in schema):
        return pa.Table.from_pylist(rows, schema=schema)
    lines = b"\n".join(orjson.dumps(row, default=_decimal_text) for row in rows)
    if len(lines) > JSON_BYTES:
        return pa.Table.from_pylist(rows, schema=schema)
    parsing = pyarrow.json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    # One block: the reader refuses a row that straddles two.
    reading = pyarrow.json.ReadOptions(block_size=len(lines) + 1)
    table = pyarrow.json.read_json(io.BytesIO(lines), read_options=reading, parse_options=parsing)
    return conformed(table.select(schema.names), schema)


def conformed(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table.cast(schema)`, without the cast where the table already has that schema (metadata too):
    the first cast loads Arrow's compute functions."""
    return table if table.schema.equals(schema, check_metadata=True) else table.cast(schema)


def conformed_array(values: pa.Array | pa.ChunkedArray, kind: pa.DataType) -> pa.Array | pa.ChunkedArray:
    """`values.cast(kind)`, without the cast where the values are already of `kind`."""
    return values if values.type == kind else values.cast(kind)


def _json_readable(field: pa.Field) -> bool:
    """Whether Arrow's JSON reader reads the values of `field` from what orjson writes for them."""
    kind = field.type
    if not field.nullable:
        return False  # the reader refuses a NULL there, where pyarrow's conversion takes it
    if pa.types.is_struct(kind):
        return all(_json_readable(child) for child in kind.fields)
    if pa.types.is_list(kind):
        return _json_readable(kind.value_field)
    if pa.types.is_timestamp(kind):
        return kind.unit in ("us", "ns")  # coarser units refuse a datetime's microseconds
    return any(
        check(kind)
        for check in (
            pa.types.is_string,
            pa.types.is_large_string,
            pa.types.is_integer,
            pa.types.is_boolean,
            pa.types.is_decimal,
        )
    )


def _decimal_text(value: object) -> str:
    """orjson's form of a Decimal: its exact text, which the JSON reader reads into a decimal column."""
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} has no JSON form")


def read_stream(stream: object) -> pa.Table:
    """A table of an Arrow stream (an arro3 table or reader, such as deltalake returns): `pa.table`
    would probe it as a pandas object first."""
    return pa.RecordBatchReader.from_stream(stream).read_all()
