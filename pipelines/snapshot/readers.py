"""Opening the served snapshot for reading: its DuckDB files, documents files and places indexes."""

from pathlib import Path

import duckdb

from pipelines.snapshot.documents import DocumentFiles, documents_of, read_blocks
from pipelines.snapshot.places import DocumentPlaces, places_of
from pipelines.snapshot.pointer import check_layout, served_files


def served_catalog(name: str) -> str:
    """The name table `name`'s file is attached under by `open_snapshot`."""
    return f"served_{name}"


def open_snapshot(snapshots: Path, pointer: dict | None) -> duckdb.DuckDBPyConnection:
    """An in-memory connection (UTC) with each table `pointer` serves attached read-only as
    `served_catalog(name).name`, and a view `name` of it for reading by hand. The API names the
    attached tables: a view is bound anew by every query, which costs as much as a small read."""
    files = served_files(snapshots, pointer)
    if not files:
        raise FileNotFoundError(f"no snapshot files are published in {snapshots}; run `mls2 pipeline run`")
    check_layout(pointer)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        for name, path in files.items():
            con.execute(f'ATTACH ? AS "{served_catalog(name)}" (READ_ONLY)', [str(path)])
            con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM "{served_catalog(name)}"."{name}"')
    except duckdb.Error:
        con.close()
        raise
    return con


def open_documents(connection: duckdb.DuckDBPyConnection, snapshots: Path, pointer: dict | None) -> DocumentFiles:
    """The documents files of the tables `pointer` serves, mapped for reading, with their blocks as the
    files `open_snapshot` attached to `connection` list them (a file published before documents had
    files of their own has none: its rows are served from their columns)."""
    files = {name: documents_of(path) for name, path in served_files(snapshots, pointer).items()}
    return DocumentFiles(
        {name: (path, read_blocks(connection, served_catalog(name))) for name, path in files.items() if path.exists()}
    )


def open_places(snapshots: Path, pointer: dict | None) -> DocumentPlaces:
    """The places indexes of the tables `pointer` serves (a file published before they existed has
    none: its rows are found through the snapshot, row by row)."""
    files = {name: places_of(path) for name, path in served_files(snapshots, pointer).items()}
    return DocumentPlaces({name: path for name, path in files.items() if path.exists()})


def is_complete(database: Path) -> bool:
    """Whether a snapshot file is there with its documents file and places index (a file published
    before they existed has none: the next publish builds it anew)."""
    return database.exists() and documents_of(database).exists() and places_of(database).exists()
