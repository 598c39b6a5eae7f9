"""The landing zone: one gzip-compressed JSON Lines file per fetched page, written atomically.

Layout (what the embedded engine and Databricks Auto Loader read; both skip names
starting with `_` or `.`, and read pages landed uncompressed, `.jsonl`, by earlier versions):

    <landing>/<entity folder>/<YYYY-MM-DD>/<sync_id>/page-000001.jsonl.gz
    <landing>/_manifests/<sync_id>.json

gzip because every reader of landing reads it as it is: DuckDB, Spark's JSON source and Auto
Loader decompress by the file's extension.

Each line is one record as Qobrix sent it, with its metadata:
`{"entity", "operation": "upsert"|"delete", "sync_id", "fetched_at", "record": {...}}`.
A page whose body was not JSON after every retry is kept as one line
`{"entity", "operation": "malformed", "sync_id", "fetched_at", "raw": "<body>"}`.

The landing root is a local path by default, or any fsspec URL (a Unity Catalog
Volume path, `s3://...`, `abfss://...`): object stores put whole objects atomically.
"""

import gzip
import re
import secrets
import threading
from datetime import UTC, datetime
from typing import Literal

import fsspec
import orjson
from fsspec.implementations.local import LocalFileSystem

from conf.entities import Entity
from conf.files import write_atomically
from ingestion.errors import LandingError

Operation = Literal["upsert", "delete"]
MANIFESTS = "_manifests"
PAGE_NAME = re.compile(r"page-(\d+)\.jsonl(?:\.gz)?$")
PAGE_SUFFIX = ".jsonl.gz"
COMPRESSION_LEVEL = 6
"""gzip's default: landing pages of listings shrink about tenfold (level 1: about sevenfold, at twice the
speed), and a page is compressed in a fraction of the time fetching it takes."""


def new_sync_id(now: datetime | None = None) -> str:
    """A sync id that sorts by start time: `20260101T101500Z-3fa9c1`."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


class LandingWriter:
    """Writes the pages of one sync under the landing root; safe to use from worker threads."""

    def __init__(self, root: str, sync_id: str, *, started: datetime) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(str(root))
        self.root = self.root.rstrip("/")
        self.sync_id = sync_id
        self.day = started.astimezone(UTC).strftime("%Y-%m-%d")
        self._lock = threading.Lock()
        self._next_page: dict[str, int] = {}

    def folder(self, entity: Entity) -> str:
        return f"{self.root}/{entity.folder}/{self.day}/{self.sync_id}"

    def _page_number(self, entity: Entity) -> int:
        """The next page number of this sync for `entity`, continuing after pages already landed (resume)."""
        with self._lock:
            if entity.name not in self._next_page:
                existing = (
                    self.fs.glob(f"{self.folder(entity)}/page-*.jsonl*") if self.fs.exists(self.folder(entity)) else []
                )
                numbers = [int(match.group(1)) for path in existing if (match := PAGE_NAME.search(path))]
                self._next_page[entity.name] = max(numbers, default=0) + 1
            number = self._next_page[entity.name]
            self._next_page[entity.name] = number + 1
            return number

    def write_page(self, entity: Entity, records: list[dict], *, operation: Operation = "upsert") -> str:
        fetched_at = datetime.now(UTC).isoformat()
        head = {"entity": entity.name, "operation": operation, "sync_id": self.sync_id, "fetched_at": fetched_at}
        return self.write_lines(
            entity, b"".join(orjson.dumps({**head, "record": record}) + b"\n" for record in records)
        )

    def write_lines(self, entity: Entity, lines: bytes) -> str:
        """Land one page already rendered as landing lines (one JSON object a line)."""
        return self._put(self._page_path(entity), lines)

    def write_malformed(self, entity: Entity, body: bytes) -> str:
        """Keep a body that never parsed, whole, so nothing that arrived is lost."""
        line = {
            "entity": entity.name,
            "operation": "malformed",
            "sync_id": self.sync_id,
            "fetched_at": datetime.now(UTC).isoformat(),
            "raw": body.decode("utf-8", errors="replace"),
        }
        return self._put(self._page_path(entity), orjson.dumps(line) + b"\n")

    def _page_path(self, entity: Entity) -> str:
        return f"{self.folder(entity)}/page-{self._page_number(entity):06d}{PAGE_SUFFIX}"

    def write_manifest(self, manifest: dict) -> str:
        return self._put(
            f"{self.root}/{MANIFESTS}/{self.sync_id}.json", orjson.dumps(manifest, option=orjson.OPT_INDENT_2)
        )

    def _put(self, path: str, data: bytes) -> str:
        if path.endswith(".gz"):
            data = gzip.compress(data, compresslevel=COMPRESSION_LEVEL, mtime=0)
        try:
            if isinstance(self.fs, LocalFileSystem):
                write_atomically(path, data)
            else:
                self.fs.pipe_file(path, data)
        except OSError as error:
            raise LandingError(f"cannot write {path}: {error}") from error
        return path
