"""Arrow values the engine builds without pyarrow's pandas probe: the same values pyarrow's own
conversions give (an update that imports no pandas: `test_update_process.py`)."""

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from pipelines._engine import arrow

TYPED = pa.schema(
    [
        ("text", pa.string()),
        ("number", pa.int64()),
        ("small", pa.int32()),
        ("flag", pa.bool_()),
        ("price", pa.decimal128(18, 2)),
        ("local", pa.timestamp("us")),
        ("instant", pa.timestamp("us", tz="UTC")),
        ("precise", pa.timestamp("ns", tz="UTC")),
        ("tags", pa.list_(pa.string())),
        ("origin", pa.struct([("name", pa.string()), ("rank", pa.int64())])),
    ]
)
TYPED_ROWS = [
    {
        "text": "quote ' double \" newline \n unicode é",
        "number": 2**62,
        "small": -7,
        "flag": True,
        "price": Decimal("-12345.60"),
        "local": datetime(2024, 2, 29, 1, 2, 3, 456789),
        "instant": datetime(2024, 1, 1, 3, tzinfo=timezone(timedelta(hours=2))),
        "precise": datetime(2024, 1, 1, 3, 0, 0, 7, tzinfo=UTC),
        "tags": ["a", None],
        "origin": {"name": "n", "rank": None},
    },
    {},
    {"number": -(2**63), "instant": datetime(2026, 12, 7, 19, 0, 0, 1, tzinfo=UTC), "tags": []},
]


@pytest.fixture
def json_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many rows each conversion read through Arrow's JSON reader."""
    read_json, reads = arrow.pyarrow.json.read_json, []

    def counted(source, **options):
        table = read_json(source, **options)
        reads.append(table.num_rows)
        return table

    monkeypatch.setattr(arrow.pyarrow.json, "read_json", counted)
    return reads


def test_rows_read_as_json_equal_pyarrows_conversion(json_reads: list[int]) -> None:
    built = arrow.rows_table(TYPED_ROWS, TYPED)
    assert json_reads == [len(TYPED_ROWS)]
    assert built.schema == TYPED
    assert built.equals(pa.Table.from_pylist(TYPED_ROWS, schema=TYPED))


def test_a_field_the_schema_lacks_is_left_out_as_pyarrow_leaves_it(json_reads: list[int]) -> None:
    rows = [{"text": "a", "unknown": 1}]
    assert arrow.rows_table(rows, TYPED).equals(pa.Table.from_pylist(rows, schema=TYPED))
    assert json_reads == [1]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (pa.field("ratio", pa.float64()), float("nan")),
        (pa.field("ratio", pa.float64()), float("inf")),
        (pa.field("day", pa.date32()), date(2024, 2, 29)),
        (pa.field("pairs", pa.map_(pa.string(), pa.string())), [("k", "v")]),
        (pa.field("seconds", pa.timestamp("s")), datetime(2024, 1, 1, 0, 0, 0, 5)),
        (pa.field("required", pa.string(), nullable=False), None),
        (pa.field("long", pa.large_list(pa.string())), ["a"]),
    ],
)
def test_values_json_does_not_carry_exactly_take_pyarrows_conversion(
    json_reads: list[int], field: pa.Field, value: object
) -> None:
    schema = pa.schema([field])
    built = arrow.rows_table([{field.name: value}], schema)
    assert json_reads == []
    assert built.schema == schema
    assert str(built.to_pylist()) == str(pa.Table.from_pylist([{field.name: value}], schema=schema).to_pylist())


def test_many_rows_take_pyarrows_conversion(json_reads: list[int]) -> None:
    many = [{"text": str(number), "number": number} for number in range(arrow.JSON_ROWS + 1)]
    assert arrow.rows_table(many, TYPED).equals(pa.Table.from_pylist(many, schema=TYPED))
    assert json_reads == []


def test_no_rows_give_an_empty_table_of_the_schema() -> None:
    empty = arrow.rows_table([], TYPED)
    assert empty.num_rows == 0 and empty.schema == TYPED


def test_arrays_equal_pyarrows() -> None:
    assert arrow.array(["a", None, "b"], pa.string()).equals(pa.array(["a", None, "b"], pa.string()))
    assert arrow.array([True, False], pa.bool_()).equals(pa.array([True, False]))
    positions = np.array([3, 1, 2**40], dtype=np.uint64)
    assert arrow.array(positions, pa.int64()).equals(pa.array([3, 1, 2**40], pa.int64()))
    micros = np.full(2, 1_700_000_000_000_000, dtype=np.int64)
    instant = datetime.fromtimestamp(1_700_000_000, UTC)
    assert arrow.array(micros, pa.timestamp("us", tz="UTC")).to_pylist() == [instant, instant]
    assert arrow.repeated("/a/b.parquet", 3).to_pylist() == ["/a/b.parquet"] * 3
    assert len(arrow.repeated("x", 0)) == 0
    many = arrow.repeated("/a/" + "b" * 100 + ".parquet", 100_000)
    assert many.type == arrow.REPEATED_TEXT and many.dictionary.to_pylist() == ["/a/" + "b" * 100 + ".parquet"]
    many_table = pa.table({"f": many})  # noqa: F841 (read by DuckDB by its name)
    assert duckdb.sql("SELECT count(DISTINCT f), any_value(typeof(f)) FROM many_table").fetchall() == [(1, "VARCHAR")]


def test_rows_given_to_python_keep_their_order_on_a_connection_that_does_not_keep_insertion_order() -> None:
    """The SCD 2 history is rebuilt from events in sequence order (a delete after an upsert of the
    same sequence wins the tie): many rows in many batches, read on several threads, come back in
    their order."""
    from pipelines._engine.cdc import _python_rows

    con = duckdb.connect()
    con.execute("SET threads = 4")
    con.execute("SET preserve_insertion_order = false")
    count = 400_000
    ordered = con.sql(f"SELECT i AS position, 'row ' || i AS text FROM range({count}) t(i) ORDER BY i")
    rows = pa.Table.from_batches(ordered.to_arrow_table().to_batches(max_chunksize=2_048))
    for _ in range(3):
        assert [row["position"] for row in _python_rows(con, rows)] == list(range(count))


def test_rows_given_to_python_keep_a_column_named_as_the_position_the_engine_adds() -> None:
    from pipelines._engine.cdc import ORDINAL, _python_rows

    rows = pa.table({"k": ["b", "a"], ORDINAL.upper(): [10, 5]})
    assert _python_rows(duckdb.connect(), rows) == [{"k": "b", ORDINAL.upper(): 10}, {"k": "a", ORDINAL.upper(): 5}]


def test_a_row_longer_than_the_json_readers_block_is_read(json_reads: list[int]) -> None:
    rows = [{"text": "x" * 3_000_000, "number": 1}, {"text": "y"}]
    assert arrow.rows_table(rows, TYPED).equals(pa.Table.from_pylist(rows, schema=TYPED))
    assert json_reads == [2]
