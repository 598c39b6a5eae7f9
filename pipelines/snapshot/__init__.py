"""The serving snapshot: what the pipeline publishes and the API reads, and the only contract between them.

A folder (MLS2_DATA_DIR/snapshots) holding, per served gold table:

- a DuckDB file with the table (every column of the gold table, then `__hash`, `__document_at`,
  `__document_size`), its rows stored in the order they are looked up by, the key and the
  `$expand` lookup columns indexed, and the gold table and version its rows reflect in
  `__gold_version` (`publish` in the engine writes it);
- a documents file (`documents`): each row already written as OData JSON, the bytes the row's
  `__document_at`/`__document_size` point to;
- a places index (`places`): where each key's document lies, and each run of documents sharing a
  lookup value, in SQLite, read without a SQL engine;

and `CURRENT.json` (`pointer`), naming the file of each table and the layout they need, replaced
atomically once every file it names is complete. Readers open the files the pointer names
(`readers`); they never write. A backend returns a row's document under `DOCUMENT_COLUMN`.
"""

from pipelines.snapshot.documents import DOCUMENT_AT, DOCUMENT_COLUMN, DOCUMENT_SIZE, DocumentFiles
from pipelines.snapshot.places import DocumentPlaces
from pipelines.snapshot.pointer import (
    SnapshotLayoutError,
    publishing_seconds,
    read_pointer,
    served_files,
    write_pointer,
)
from pipelines.snapshot.readers import is_complete, open_documents, open_places, open_snapshot, served_catalog

__all__ = [
    "DOCUMENT_AT",
    "DOCUMENT_COLUMN",
    "DOCUMENT_SIZE",
    "DocumentFiles",
    "DocumentPlaces",
    "SnapshotLayoutError",
    "is_complete",
    "open_documents",
    "open_places",
    "open_snapshot",
    "publishing_seconds",
    "read_pointer",
    "served_catalog",
    "served_files",
    "write_pointer",
]
