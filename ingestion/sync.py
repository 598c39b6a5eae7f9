"""One sync: every selected entity from Qobrix into the landing zone, then the state advances."""

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from conf.entities import Entity
from ingestion.client import QobrixClient
from ingestion.landing import LandingWriter, new_sync_id
from ingestion.state import SyncState

ProgressCallback = Callable[[str, int, int], None]
"""Called after each landed page with (entity, records landed so far, total expected)."""


@dataclass
class EntityResult:
    entity: str
    pages: int = 0
    records: int = 0
    files: list[str] = field(default_factory=list)


@dataclass
class SyncResult:
    sync_id: str
    started: str
    finished: str = ""
    status: str = "running"
    full_refresh: bool = True
    entities: list[EntityResult] = field(default_factory=list)

    @property
    def records(self) -> int:
        return sum(result.records for result in self.entities)


def sync_entity(
    client: QobrixClient,
    writer: LandingWriter,
    entity: Entity,
    *,
    page_size: int,
    max_records: int | None,
    progress: ProgressCallback | None,
) -> EntityResult:
    result = EntityResult(entity=entity.name)
    for page in client.iter_pages(entity.name, entity.path, limit=page_size, params=entity.params):
        records = page.records
        if max_records is not None:
            records = records[: max(0, max_records - result.records)]
        if records:
            path = writer.write_page(entity.name, page.number, records)
            result.files.append(str(path))
            result.pages += 1
            result.records += len(records)
        if progress:
            progress(entity.name, result.records, min(page.count, max_records or page.count))
        if max_records is not None and result.records >= max_records:
            break
    return result


def run_sync(
    *,
    client: QobrixClient,
    landing_root: Path,
    state_path: Path,
    entities: list[Entity],
    full_refresh: bool = True,
    max_properties: int | None = None,
    page_size: int = 100,
    progress: ProgressCallback | None = None,
) -> SyncResult:
    """Land every page of every entity, write the manifest, then record the sync in the state."""
    started = datetime.now(UTC)
    result = SyncResult(sync_id=new_sync_id(started), started=started.isoformat(), full_refresh=full_refresh)
    writer = LandingWriter(landing_root, result.sync_id, started=started)
    state = SyncState(state_path)
    for entity in entities:
        limit = max_properties if entity.name == "properties" else None
        result.entities.append(
            sync_entity(client, writer, entity, page_size=page_size, max_records=limit, progress=progress)
        )
    result.finished = datetime.now(UTC).isoformat()
    result.status = "succeeded"
    summary = asdict(result)
    for entity_summary in summary["entities"]:
        entity_summary.pop("files")
    writer.write_manifest(summary)
    state.record_sync(
        summary,
        {r.entity: {"last_sync_id": result.sync_id, "last_synced": result.finished} for r in result.entities},
    )
    return result
