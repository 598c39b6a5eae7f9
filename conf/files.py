"""Durable file writes, kept caches' reading and YAML reading, shared by every part that keeps state
or declarations on disk."""

import os
import uuid
from pathlib import Path

import orjson
import yaml

YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader where PyYAML was built with it: the pure-Python one took a noticeable
part of every `mls2 pipeline run` reading the mappings and SQL headers."""


def load_yaml(text: str) -> object:
    """`text` as YAML's safe subset (plain data, no tags that build objects)."""
    return yaml.load(text, Loader=YAML_LOADER)


def read_kept(path: Path, stamp_key: str, stamp: object) -> dict | None:
    """The JSON object a cache kept at `path`, when its `stamp_key` is `stamp` (what wrote it, in the
    layout it wrote); None when the file is missing, unreadable, not a JSON object or of another
    stamp: the cache is then built again."""
    try:
        kept = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return kept if isinstance(kept, dict) and kept.get(stamp_key) == stamp else None


def write_atomically(path: Path, data: bytes, mode: int = 0o666) -> None:
    """Write to a hidden temporary file of its own beside `path`, flush to disk, then rename into place.

    Readers see the old file or the new one, never a part, and two processes writing the same file
    at once leave one of theirs whole; a crash leaves only the temporary. `mode` (less the umask) is
    the file's from its creation: a secret written with 0o600 is never readable by others.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
