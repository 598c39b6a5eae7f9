"""The documents file beside each serving snapshot file: every row written as OData JSON, compressed in blocks.

DuckDB stores long strings slowly (on one core, storing them was a large share of a Property file's
build) and reads one by key slowly too (a vector's worth of overflow blocks), so a row's document
is not a column. The table keeps where its document lies (`__document_at`, `__document_size`) and
the bytes live in `<file>.documents`, which readers map into memory.

Places are offsets in the documents written end to end (the file's logical bytes). The file holds
them as blocks of about `BLOCK_BYTES`, cut between documents and each compressed with zstd on its
own, so a row read by key decompresses one block; the table `__document_blocks` of the DuckDB
file says where each block's logical bytes begin and where its compressed bytes lie. It is written
in the same transaction as the rows that point into the blocks. (JSON documents were four fifths of
a snapshot's bytes; figures in benchmarks/RESULTS.md.) A file written before blocks has no such
table: its bytes are the documents themselves, read as they lie.

Each document is followed by a comma, which its recorded size leaves out: documents written side
by side (a listing's media, see `publish`) read as one slice that is a JSON array's items.

The file is only ever appended to: a patch appends the blocks of the rows it writes and leaves
those of rows it removed in place. So a publish may start from a hard link to the served file's
documents: readers of the served snapshot read only the blocks their own table lists, and see
nothing of what is appended after them. Snapshots sharing a file each number its logical bytes on
their own.
"""

import mmap
import os
import threading
from array import array
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

DOCUMENT_AT, DOCUMENT_SIZE = "__document_at", "__document_size"
DOCUMENT_COLUMN = "__document"
"""The column under which a backend returns each row already written as OData JSON."""
SEPARATOR = ","
ROWS_PER_BATCH = 8192
BLOCKS_TABLE = "__document_blocks"
BLOCK_COLUMNS = ("start", "at", "size", "length")
BLOCK_BYTES = 64 * 1024
"""Logical bytes per compressed block, at least (a block ends with a document). Smaller blocks read
a single document faster and compress worse (measured in benchmarks/RESULTS.md)."""
CODEC = pa.Codec("zstd", compression_level=3)
CACHED_BLOCKS = 256
"""Decompressed blocks a reader keeps per snapshot: a page of rows in stored order reads the same
blocks again and again."""


def documents_of(database: Path) -> Path:
    return database.with_name(database.name + ".documents")


@dataclass(frozen=True)
class Blocks:
    """A documents file's blocks, in logical order: where each begins among the logical bytes, where
    its compressed bytes lie in the file and how many there are, and how many logical bytes it holds."""

    starts: array
    at: array
    sizes: array
    lengths: array

    @property
    def end(self) -> int:
        """The logical bytes the blocks hold: where the next block begins."""
        return self.starts[-1] + self.lengths[-1] if self.starts else 0

    @property
    def stored(self) -> int:
        """The compressed bytes of these blocks."""
        return sum(self.sizes)


def create_blocks_table(con: duckdb.DuckDBPyConnection) -> None:
    """An empty blocks table in the database being built (its documents file is new)."""
    con.execute(f'CREATE OR REPLACE TABLE "{BLOCKS_TABLE}" (start BIGINT, "at" BIGINT, size INTEGER, length INTEGER)')


def read_blocks(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> Blocks | None:
    """The blocks table of the database `catalog` (the connection's default one when None), or None for
    a file written before documents were compressed."""
    tables = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND database_name = coalesce(?, current_database())",
        [BLOCKS_TABLE, catalog],
    ).fetchone()
    if not tables or not tables[0]:
        return None
    table = f'"{catalog}"."{BLOCKS_TABLE}"' if catalog else f'"{BLOCKS_TABLE}"'
    listed = ", ".join(f'"{column}"' for column in BLOCK_COLUMNS)
    columns = con.execute(f"SELECT {listed} FROM {table} ORDER BY start").fetchnumpy()
    return Blocks(*(array("q", column.astype(np.int64)) for column in columns.values()))


class _BlockWriter:
    """Cuts documents written end to end into blocks of at least BLOCK_BYTES, compresses and appends them."""

    def __init__(self, file, logical_end: int) -> None:
        self.file, self.logical = file, logical_end
        self.pending = bytearray()
        self.blocks: list[tuple[int, int, int, int]] = []

    def add(self, data: memoryview, ends: np.ndarray) -> None:
        """Take `data`, documents whose ends (offsets in `data`) are `ends`."""
        taken = 0
        while True:
            cut = int(np.searchsorted(ends, taken + BLOCK_BYTES - len(self.pending)))
            if cut == len(ends):
                break
            self.pending += data[taken : int(ends[cut])]
            taken = int(ends[cut])
            self._write_pending()
        self.pending += data[taken:]

    def finish(self) -> None:
        if self.pending:
            self._write_pending()

    def _write_pending(self) -> None:
        compressed = CODEC.compress(self.pending, asbytes=True)
        at = self.file.tell()
        self.file.write(compressed)
        self.blocks.append((self.logical, at, len(compressed), len(self.pending)))
        self.logical += len(self.pending)
        self.pending = bytearray()


def _integers(buffer: pa.Buffer, kind: type[np.integer], offset: int, count: int) -> np.ndarray:
    """`count` integers of `kind` in an Arrow buffer from position `offset`, as numpy reads them in
    place. Read in numpy, not through pyarrow (`to_numpy`, its kernels given a Python number), which
    imports pandas: a noticeable part of a small update's publish in a process of its own."""
    return np.frombuffer(buffer, dtype=kind, count=count, offset=offset * np.dtype(kind).itemsize)


def _text_offsets(text: pa.Array) -> np.ndarray:
    """The offsets of a text array's values in its data buffer, as 64-bit integers, whether they are
    32-bit (DuckDB's VARCHAR) or 64-bit: not cast by pyarrow (its first cast loads Arrow's compute
    functions)."""
    if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type)):
        raise TypeError(f"documents are read as Arrow text, not {text.type}")
    kind = np.int64 if pa.types.is_large_string(text.type) else np.int32
    return _integers(text.buffers()[1], kind, text.offset, len(text) + 1).astype(np.int64, copy=False)


def append_documents(con: duckdb.DuckDBPyConnection, table: str, document: str, documents: Path, where: str) -> int:
    """Write the `document` (a SQL expression over `table`'s columns) of each row matching `where` after
    the documents `documents` holds, each followed by `SEPARATOR`, as compressed blocks listed in the
    blocks table, and record where in the row; returns the logical bytes appended. Rows are read in a
    scan's order: stored order where insertion order is preserved (`preserve_insertion_order`), so rows
    stored side by side have their documents side by side."""
    blocks = read_blocks(con)
    if blocks is None:
        raise ValueError(f"{documents} has no blocks table: build its snapshot file anew")
    rows = con.sql(f"SELECT rowid, {document} || '{SEPARATOR}' AS document FROM \"{table}\" WHERE {where}")
    rowids, starts, sizes = [], [], []
    with open(documents, "ab") as file:
        file.seek(0, os.SEEK_END)
        writer = _BlockWriter(file, blocks.end)
        end = begin = blocks.end
        for batch in rows.to_arrow_reader(ROWS_PER_BATCH):
            text = batch.column(1)
            offsets = _text_offsets(text)
            first, last = int(offsets[0]), int(offsets[-1])
            writer.add(memoryview(text.buffers()[2])[first:last], offsets[1:] - first)
            starts.append(offsets[:-1] - first + end)
            sizes.append((np.diff(offsets) - len(SEPARATOR)).astype(np.int32))
            # Copied: a column imported from DuckDB keeps its whole batch alive, documents too.
            rowids.append(_integers(batch.column(0).buffers()[1], np.int64, batch.column(0).offset, len(batch)).copy())
            end += last - first
        writer.finish()
        file.flush()
        os.fsync(file.fileno())
    if not rowids:
        return 0
    listed = list(zip(*writer.blocks, strict=True)) or [(), (), (), ()]
    written = {name: np.array(values, dtype=np.int64) for name, values in zip(BLOCK_COLUMNS, listed, strict=True)}
    positions = {"row": np.concatenate(rowids), "at": np.concatenate(starts), "size": np.concatenate(sizes)}
    con.register("document_blocks", written)
    con.register("document_positions", positions)
    try:
        con.execute(f'INSERT INTO "{BLOCKS_TABLE}" SELECT * FROM document_blocks')
        con.execute(
            f'UPDATE "{table}" SET "{DOCUMENT_AT}" = p.at, "{DOCUMENT_SIZE}" = p.size '
            f'FROM document_positions p WHERE "{table}".rowid = p.row'
        )
    finally:
        con.unregister("document_blocks")
        con.unregister("document_positions")
    return end - begin


class DocumentFiles:
    """The documents files of one snapshot, mapped into memory for reading, with each one's blocks
    (None for a file written before blocks)."""

    def __init__(self, files: dict[str, tuple[Path, Blocks | None]]) -> None:
        self._maps: dict[str, mmap.mmap | bytes] = {}
        self._blocks = {name: blocks for name, (_, blocks) in files.items()}
        self._cache: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._cache_lock = threading.Lock()
        for name, (path, _) in files.items():
            with open(path, "rb") as file:
                size = os.fstat(file.fileno()).st_size
                self._maps[name] = mmap.mmap(file.fileno(), size, access=mmap.ACCESS_READ) if size else b""

    def __contains__(self, name: str) -> bool:
        return name in self._maps

    def read(self, name: str, at: int, size: int) -> bytes:
        """The `size` logical bytes from `at` of table `name`'s documents."""
        blocks = self._blocks[name]
        if blocks is None:
            return self._maps[name][at : at + size]
        if at < 0 or at + size > blocks.end:
            raise ValueError(f"{name}: documents {at} to {at + size} lie beyond its blocks' {blocks.end} bytes")
        index, end, pieces = bisect_right(blocks.starts, at) - 1, at + size, []
        while True:
            start = blocks.starts[index]
            block = self._block(name, blocks, index)
            pieces.append(block[max(at - start, 0) : end - start])
            if start + len(block) >= end or index + 1 == len(blocks.starts):
                return pieces[0] if len(pieces) == 1 else b"".join(pieces)
            index += 1

    def _block(self, name: str, blocks: Blocks, index: int) -> bytes:
        """Block `index` of table `name` decompressed, from the cache when a recent read took it."""
        with self._cache_lock:
            cached = self._cache.get((name, index))
            if cached is not None:
                self._cache.move_to_end((name, index))
                return cached
        at = blocks.at[index]
        compressed = memoryview(self._maps[name])[at : at + blocks.sizes[index]]
        block = CODEC.decompress(compressed, decompressed_size=blocks.lengths[index], asbytes=True)
        with self._cache_lock:
            self._cache[(name, index)] = block
            while len(self._cache) > CACHED_BLOCKS:
                self._cache.popitem(last=False)
        return block
