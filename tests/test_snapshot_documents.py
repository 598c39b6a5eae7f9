"""The snapshot's documents file: rows as OData JSON in compressed blocks, read back byte for byte."""

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import orjson
import pytest

from pipelines._engine import publish
from pipelines.snapshot import documents as documents_module
from pipelines.snapshot.documents import DocumentFiles, documents_of, read_blocks

BLOCK = 1000
"""A block size small enough for a few hundred rows to fill many blocks, some rows larger than one."""


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(documents_module, "BLOCK_BYTES", BLOCK)


def make_source(con: duckdb.DuckDBPyConnection, rows: int, seed: int) -> None:
    """Rows of random sizes (a few bytes to several blocks), sharing `parent` values in runs."""
    draw = random.Random(seed)
    values = [
        (f"k{i:04d}", f"p{i % 37}", "x" * draw.choice([0, 3, 40, 700, 999, 2500, 4 * BLOCK]) + str(i))
        for i in range(rows)
    ]
    con.execute("CREATE OR REPLACE TEMP TABLE source (id VARCHAR, parent VARCHAR, text VARCHAR)")
    con.executemany("INSERT INTO source VALUES (?, ?, ?)", values)


def file_documents(path: Path, table: str) -> DocumentFiles:
    with duckdb.connect(str(path), read_only=True) as con:
        return DocumentFiles({table: (documents_of(path), read_blocks(con))})


def served_rows(path: Path, table: str) -> dict[str, tuple[int, int]]:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(f'SELECT id, "__document_at", "__document_size" FROM "{table}"').fetchall()
    return {key: (at, size) for key, at, size in rows}


def source_documents(con: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    rows = con.execute("FROM source").fetchall()
    return {key: {"id": key, "parent": parent, "text": text} for key, parent, text in rows}


def build(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    with publish.serving_storage(con), publish.snapshot_database(path, con):
        publish.create_serving_table(con, "t", "source", path, "id", ["parent"])


def test_every_document_and_run_reads_back_whole_across_blocks_built_and_patched(
    tmp_path: Path, small_blocks: None
) -> None:
    path = tmp_path / "t.duckdb"
    with duckdb.connect() as con:
        make_source(con, 400, seed=1)
        build(con, path)
        con.execute("UPDATE source SET text = text || '-changed' WHERE id LIKE '%3'")
        con.execute("DELETE FROM source WHERE id LIKE '%7'")
        con.execute("INSERT INTO source VALUES ('k9999', 'p1', 'new')")
        with publish.serving_storage(con), publish.snapshot_database(path, con):
            removed, written = publish.patch_serving_table(con, "t", "source", path, "id", ["parent"])
        assert removed and written
        expected = source_documents(con)
    documents = file_documents(path, "t")
    read = {key: orjson.loads(documents.read("t", *place)) for key, place in served_rows(path, "t").items()}
    assert read == expected
    with duckdb.connect(str(path), read_only=True) as served:
        runs = served.execute(
            'SELECT parent, min("__document_at"), max("__document_at" + "__document_size") - min("__document_at"), '
            'list(id ORDER BY "__document_at") FROM t GROUP BY parent'
        ).fetchall()
    for parent, at, size, keys in runs:
        assert orjson.loads(b"[" + documents.read("t", at, size) + b"]") == [expected[key] for key in keys], parent


def test_blocks_are_cut_between_documents_and_follow_each_other(tmp_path: Path, small_blocks: None) -> None:
    """A document read by key decompresses one block unless it is larger than a block."""
    path = tmp_path / "t.duckdb"
    with duckdb.connect() as con:
        make_source(con, 400, seed=2)
        build(con, path)
    with duckdb.connect(str(path), read_only=True) as con:
        blocks = read_blocks(con)
    assert blocks is not None and len(blocks.starts) > 50
    ends = {at + size + len(documents_module.SEPARATOR) for at, size in served_rows(path, "t").values()}
    largest = max(size for _, size in served_rows(path, "t").values())
    for index, (start, length) in enumerate(zip(blocks.starts, blocks.lengths, strict=True)):
        assert start + length in ends, f"block {index} ends inside a document"
        assert index == 0 or start == blocks.starts[index - 1] + blocks.lengths[index - 1]
        assert length < BLOCK + largest + len(documents_module.SEPARATOR)
    assert blocks.end == max(ends)
    assert sum(blocks.sizes) == documents_of(path).stat().st_size


def test_documents_are_stored_compressed(tmp_path: Path) -> None:
    """Rows of the same fields, as listings are: the file holds a fraction of the documents' bytes."""
    path = tmp_path / "t.duckdb"
    with duckdb.connect() as con:
        con.execute(
            "CREATE TEMP TABLE source AS SELECT 'k' || i AS id, 'p' || (i % 50) AS parent, "
            "'A sunny flat with a sea view, ' || (i % 7) || ' bedrooms' AS text FROM range(20000) r(i)"
        )
        build(con, path)
    logical = sum(size for _, size in served_rows(path, "t").values())
    assert documents_of(path).stat().st_size * 5 < logical


def test_a_file_written_before_blocks_is_read_as_it_lies_and_built_anew(tmp_path: Path) -> None:
    """The layout of an earlier version: documents end to end, uncompressed, no blocks table. The API
    reads it until the next publish, which builds the file anew rather than appending blocks to it."""
    path = tmp_path / "t.duckdb"
    with duckdb.connect() as con:
        make_source(con, 50, seed=3)
        build(con, path)
        expected = source_documents(con)
        blocks = read_blocks(duckdb.connect(str(path), read_only=True))
        assert blocks is not None
        whole = file_documents(path, "t").read("t", 0, blocks.end)
        documents_of(path).write_bytes(whole)
        with duckdb.connect(str(path)) as old:
            old.execute(f'DROP TABLE "{documents_module.BLOCKS_TABLE}"')
        places = served_rows(path, "t")
        old_layout = DocumentFiles({"t": (documents_of(path), None)})
        assert {key: orjson.loads(old_layout.read("t", *place)) for key, place in places.items()} == expected
        with publish.serving_storage(con), publish.snapshot_database(path, con):
            assert read_blocks(con) is None
            assert publish.patch_serving_table(con, "t", "source", path, "id", ["parent"]) is None
    with duckdb.connect() as reader:
        reader.execute("ATTACH ? AS served_t (READ_ONLY)", [str(path)])
        assert read_blocks(reader, "served_t") is None, "as the API looks the blocks up"


def test_the_api_finds_a_files_blocks_where_it_attached_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    with duckdb.connect() as con:
        make_source(con, 50, seed=6)
        build(con, path)
    with duckdb.connect() as reader:
        reader.execute("ATTACH ? AS served_t (READ_ONLY)", [str(path)])
        blocks = read_blocks(reader, "served_t")
    assert blocks is not None and blocks.end == sum(blocks.lengths) > 0


def test_blocks_of_a_patch_rolled_back_are_skipped_by_the_next(tmp_path: Path, small_blocks: None) -> None:
    """A patch writes its blocks to the file before its transaction commits: one that rolls back
    leaves bytes no block lists, and the next patch appends after them, numbering its documents
    from where the listed blocks end."""
    path = tmp_path / "t.duckdb"
    with duckdb.connect() as con:
        make_source(con, 100, seed=7)
        build(con, path)
        con.execute("UPDATE source SET text = text || '-first' WHERE id LIKE '%1'")
        with publish.serving_storage(con), publish.snapshot_database(path, con):
            before = read_blocks(con)
            con.execute("BEGIN TRANSACTION")
            con.execute("UPDATE t SET __document_at = NULL WHERE id LIKE '%1'")
            appended = documents_module.append_documents(
                con, "t", "CAST(to_json(struct_pack(id := id)) AS VARCHAR)", documents_of(path), "__document_at IS NULL"
            )
            con.execute("ROLLBACK")
            assert appended > 0 and read_blocks(con) == before
        orphaned = documents_of(path).stat().st_size
        assert orphaned > before.stored
        with publish.serving_storage(con), publish.snapshot_database(path, con):
            assert publish.patch_serving_table(con, "t", "source", path, "id", ["parent"])[1] > 0
            after = read_blocks(con)
        expected = source_documents(con)
    assert after.starts[len(before.starts)] == before.end and after.at[len(before.starts)] >= orphaned
    documents = file_documents(path, "t")
    read = {key: orjson.loads(documents.read("t", *place)) for key, place in served_rows(path, "t").items()}
    assert read == expected


def test_a_read_beyond_the_blocks_fails_naming_the_range(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    with duckdb.connect() as con:
        make_source(con, 10, seed=8)
        build(con, path)
    documents = file_documents(path, "t")
    with duckdb.connect(str(path), read_only=True) as con:
        end = read_blocks(con).end
    with pytest.raises(ValueError, match=f"beyond its blocks' {end} bytes"):
        documents.read("t", end - 2, 10)


def test_readers_on_many_threads_read_through_a_small_cache(tmp_path: Path, monkeypatch, small_blocks: None) -> None:
    monkeypatch.setattr(documents_module, "CACHED_BLOCKS", 3)
    path = tmp_path / "t.duckdb"
    with duckdb.connect() as con:
        make_source(con, 300, seed=4)
        build(con, path)
        expected = source_documents(con)
    documents = file_documents(path, "t")
    places = list(served_rows(path, "t").items()) * 4
    random.Random(5).shuffle(places)
    with ThreadPoolExecutor(4) as pool:
        read = list(pool.map(lambda item: (item[0], orjson.loads(documents.read("t", *item[1]))), places))
    assert all(document == expected[key] for key, document in read)


def test_text_offsets_are_read_in_place_from_32_and_64_bit_offsets_of_a_slice() -> None:
    """As pyarrow's cast to large text gives them, without it (the cast loads Arrow's compute
    functions); a type that is not text is refused."""
    import pyarrow as pa

    values = ["", "a", "bb\u00e9", "x" * 300, "", "tail"]
    for text in (pa.array(values, pa.string()), pa.array(values, pa.large_string())):
        sliced = text.slice(2, 3)
        wide = sliced.cast(pa.large_string())
        expected = list(memoryview(wide.buffers()[1]).cast("q"))[wide.offset : wide.offset + len(wide) + 1]
        assert documents_module._text_offsets(sliced).tolist() == expected
    with pytest.raises(TypeError, match="not int64"):
        documents_module._text_offsets(pa.array([1, 2]))
