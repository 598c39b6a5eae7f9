"""The documents file beside each serving snapshot file: every row written as OData JSON, end to end.

DuckDB stores long strings slowly (on one core, storing them was a large share of a Property file's
build) and reads one by key slowly too (a vector's worth of overflow blocks), so a row's document
is not a column. The table keeps where its document lies (`__document_at`, `__document_size`) and
the bytes live in `<file>.documents`, which readers map into memory and slice.

Each document is followed by a comma, which its recorded size leaves out: documents written side
by side (a listing's media, see `publish`) read as one slice that is a JSON array's items. (A file
first written before the commas keeps its older documents without them; only runs need them, and
such a file, which has no places index, is built anew.)

The file is only ever appended to: a patch appends the documents of the rows it writes and leaves
those of rows it removed in place. So a publish may start from a hard link to the served file's
documents: readers of the served snapshot read only below the length it had, and see nothing of
what is appended after it.
"""

import mmap
import os
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

DOCUMENT_AT, DOCUMENT_SIZE = "__document_at", "__document_size"
DOCUMENT_COLUMN = "__document"
"""The column under which a backend returns each row already written as OData JSON."""
SEPARATOR = ","
ROWS_PER_BATCH = 8192


def documents_of(database: Path) -> Path:
    return database.with_name(database.name + ".documents")


def append_documents(con: duckdb.DuckDBPyConnection, table: str, document: str, documents: Path, where: str) -> int:
    """Write the `document` (a SQL expression over `table`'s columns) of each row matching `where` at
    the end of `documents`, each followed by `SEPARATOR`, and record where in the row; returns the
    bytes appended. Rows are read in a scan's order: stored order where insertion order is preserved
    (`preserve_insertion_order`), so rows stored side by side have their documents side by side."""
    rows = con.sql(f"SELECT rowid, {document} || '{SEPARATOR}' AS document FROM \"{table}\" WHERE {where}")
    rowids, starts, sizes = [], [], []
    with open(documents, "ab") as file:
        end = begin = file.seek(0, os.SEEK_END)
        for batch in rows.to_arrow_reader(ROWS_PER_BATCH):
            text = batch.column(1).cast(pa.large_string())
            offsets = pa.Array.from_buffers(pa.int64(), len(text) + 1, [None, text.buffers()[1]], offset=text.offset)
            first, last = offsets[0].as_py(), offsets[-1].as_py()
            file.write(memoryview(text.buffers()[2])[first:last])
            beginnings = offsets.slice(0, len(text))
            starts.append(pc.add(pc.subtract(beginnings, first), end))
            sizes.append(pc.cast(pc.subtract(pc.subtract(offsets.slice(1), beginnings), len(SEPARATOR)), pa.int32()))
            # Computed, hence copied: a column imported from DuckDB keeps its whole batch alive, documents too.
            rowids.append(pc.add(batch.column(0), 0))
            end += last - first
        file.flush()
        os.fsync(file.fileno())
    if not rowids:
        return 0
    positions = pa.table(
        {"row": pa.chunked_array(rowids), "at": pa.chunked_array(starts), "size": pa.chunked_array(sizes)}
    )
    con.register("document_positions", positions)
    try:
        con.execute(
            f'UPDATE "{table}" SET "{DOCUMENT_AT}" = p.at, "{DOCUMENT_SIZE}" = p.size '
            f'FROM document_positions p WHERE "{table}".rowid = p.row'
        )
    finally:
        con.unregister("document_positions")
    return end - begin


def link_or_copy(source: Path, target: Path) -> None:
    """`target` as a hard link to `source` (appending to it leaves what `source`'s readers read as
    it was), or a copy where the file system has no hard links."""
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


class DocumentFiles:
    """The documents files of one snapshot, mapped into memory for reading."""

    def __init__(self, files: dict[str, Path]) -> None:
        self._maps: dict[str, mmap.mmap | bytes] = {}
        for name, path in files.items():
            with open(path, "rb") as file:
                size = os.fstat(file.fileno()).st_size
                self._maps[name] = mmap.mmap(file.fileno(), size, access=mmap.ACCESS_READ) if size else b""

    def __contains__(self, name: str) -> bool:
        return name in self._maps

    def read(self, name: str, at: int, size: int) -> bytes:
        return self._maps[name][at : at + size]
