"""Reading what a sync landed, and checking it against what the sandbox serves."""

import gzip
from collections import defaultdict
from pathlib import Path

import orjson

from conf.entities import entities
from conf.settings import Settings
from ingestion.sandbox import SandboxWorld

INLINE_MEDIA = {"properties", "projects"}


def landed_pages(settings: Settings, pattern: str = "*/*/*/page-*.jsonl.gz") -> list[Path]:
    """The landed pages matching `pattern` under the landing root, in landing order."""
    return sorted(settings.paths.landing.glob(pattern))


def page_lines(path: Path) -> list[bytes]:
    """The lines of a landed page (gzip-compressed JSON Lines)."""
    return gzip.decompress(path.read_bytes()).splitlines()


def landed(settings: Settings, sync_id: str | None = None) -> dict[str, list[dict]]:
    """Every landed line by entity name (of one sync when given), in landing order."""
    lines = defaultdict(list)
    for path in landed_pages(settings):
        if sync_id and path.parent.name != sync_id:
            continue
        for line in page_lines(path):
            parsed = orjson.loads(line)
            lines[parsed["entity"]].append(parsed)
    return lines


def version_order(record: dict) -> tuple[str, str]:
    """How versions of a record order, as silver orders them: a media-only change moves only `last_media_update`."""
    return record.get("modified") or "", record.get("last_media_update") or ""


def latest(lines: list[dict]) -> dict[str, dict]:
    """The newest landed version of each record (by `version_order`, then landing order)."""
    versions: dict[str, dict] = {}
    for line in lines:
        record = line["record"]
        if line["operation"] != "upsert" or not isinstance(record, dict):
            continue
        current = versions.get(record["id"])
        if current is None or version_order(record) >= version_order(current):
            versions[record["id"]] = record
    return versions


def served(world: SandboxWorld, entity: str) -> dict[str, dict]:
    """What the sandbox serves now for every live record, in the shape the sync asks for."""
    result = {}
    state = world.states[entity]
    for index in range(state.total):
        if world.exists(entity, index) and not world.is_trashed(entity, index):
            record = world.present(entity, index, expand=False, media=entity in INLINE_MEDIA)
            result[record["id"]] = record
    return result


def own_media(record: dict) -> dict:
    """A property as far as the property itself goes: its project's photos change with the project.

    Qobrix does not touch a property when its project's media change; the project lands
    with its new media and silver attaches them to the project's properties.
    """
    if "media" not in record:
        return record
    own = [m for m in record["media"] if m["related_model"] != "Projects" or "project" not in record]
    return {**record, "media": own}


def assert_everything_landed(settings: Settings, world: SandboxWorld) -> None:
    """Every live record of every entity landed, in its current version."""
    lines = landed(settings)
    for entity in entities():
        expected = {key: own_media(record) for key, record in served(world, entity).items()}
        got = {key: own_media(record) for key, record in latest(lines[entity]).items()}
        missing = set(expected) - set(got)
        assert not missing, f"{entity}: {len(missing)} records never landed"
        stale = [key for key in expected if got[key] != expected[key]]
        assert not stale, f"{entity}: {len(stale)} records landed only in an older version"
