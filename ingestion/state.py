"""Sync state (the 2025 version's `cdc_metadata`): per-entity watermarks and recent syncs.

Stored as one JSON document replaced atomically, and advanced only after the data
it describes is on disk.
"""

from pathlib import Path

import orjson

from conf.files import write_atomically

RECENT_SYNCS_KEPT = 50


class SyncState:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._doc = orjson.loads(self.path.read_bytes()) if self.path.exists() else {"entities": {}, "syncs": []}

    def entity(self, name: str) -> dict:
        return dict(self._doc["entities"].get(name, {}))

    @property
    def syncs(self) -> list[dict]:
        return list(self._doc["syncs"])

    def record_sync(self, summary: dict, entity_updates: dict[str, dict]) -> None:
        """Store a finished sync and its entities' new watermarks in one atomic write."""
        for name, update in entity_updates.items():
            self._doc["entities"][name] = {**self._doc["entities"].get(name, {}), **update}
        self._doc["syncs"] = ([summary] + self._doc["syncs"])[:RECENT_SYNCS_KEPT]
        write_atomically(self.path, orjson.dumps(self._doc, option=orjson.OPT_INDENT_2))
