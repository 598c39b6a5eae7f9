"""The landing zone: one JSON Lines file per fetched page, written atomically.

Layout (readable by the embedded engine and by Databricks Auto Loader, which skip
names starting with `_` or `.`):

    <landing>/<entity>/<YYYY-MM-DD>/<sync_id>/page-000001.jsonl
    <landing>/_manifests/<sync_id>.json

Each line is one record as Qobrix sent it, wrapped with its metadata:
`{"entity", "operation": "upsert"|"delete", "sync_id", "fetched_at", "record": {...}}`.
"""

import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import orjson

from conf.files import write_atomically

Operation = Literal["upsert", "delete"]
MANIFESTS = "_manifests"


def new_sync_id(now: datetime | None = None) -> str:
    """A sync id that sorts by start time: `20260101T101500Z-3fa9c1`."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


class LandingWriter:
    """Writes the pages of one sync under the landing root."""

    def __init__(self, root: Path, sync_id: str, *, started: datetime | None = None) -> None:
        self.root = Path(root)
        self.sync_id = sync_id
        self.day = (started or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d")

    def page_path(self, entity: str, page: int, *, part: str = "page") -> Path:
        return self.root / entity / self.day / self.sync_id / f"{part}-{page:06d}.jsonl"

    def write_page(
        self, entity: str, page: int, records: list[dict], *, operation: Operation = "upsert", part: str = "page"
    ) -> Path:
        """Land one page; writing the same page again replaces it (idempotent re-landing)."""
        fetched_at = datetime.now(UTC).isoformat()
        lines = b"".join(
            orjson.dumps(
                {
                    "entity": entity,
                    "operation": operation,
                    "sync_id": self.sync_id,
                    "fetched_at": fetched_at,
                    "record": record,
                }
            )
            + b"\n"
            for record in records
        )
        path = self.page_path(entity, page, part=part)
        write_atomically(path, lines)
        return path

    def write_manifest(self, manifest: dict) -> Path:
        path = self.root / MANIFESTS / f"{self.sync_id}.json"
        write_atomically(path, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        return path
