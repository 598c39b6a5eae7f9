"""The parts of a Delta log the engine reads and writes itself: each data file's deletion vector, and
commits that delta-rs cannot make (it reads deletion vectors but writes none).

Everything else (appends, overwrites, checkpoints, vacuum, history) stays with delta-rs, which keeps
the deletion vectors of the files it leaves in place.
"""

import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote

import orjson
import pyarrow.parquet as pq
from deltalake import DeltaTable
from pyroaring import BitMap64

from pipelines._engine.deletion_vectors import Descriptor
from pipelines._engine.errors import PipelineError

DELETION_VECTORS = "deletionVectors"
ENABLE_DELETION_VECTORS = "delta.enableDeletionVectors"
CHANGE_DATA_FEED = "delta.enableChangeDataFeed"
"""Off in merge-on-read tables: their commits write no change data files, which the feed would
require, and nothing reads them as a stream (what follows them reads them whole or by key)."""
LEGACY_WRITER_FEATURES = {
    2: ["appendOnly", "invariants"],
    3: ["checkConstraints"],
    4: ["changeDataFeed", "generatedColumns"],
    5: ["columnMapping"],
    6: ["identityColumns"],
}
"""The features a legacy writer version implies (the protocol's table), kept when the table moves to
writer version 7, where features are named."""
MULTI_PART_CHECKPOINT = re.compile(r"\.\d{10}\.\d{10}\.parquet")
V2_CHECKPOINT = re.compile(r"\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.(json|parquet)")
CHECKPOINT_INTERVAL = 10
"""Commits between checkpoints, as Spark's Delta Lake checkpoints by default (delta-rs: 100). Opening a
table replays the commits after its last checkpoint, and an update opens each table it writes before
and after its commits: at 50 commits past a checkpoint an open took about five times one just after
(benchmarks/RESULTS.md)."""


class CommitConflict(PipelineError):
    """Another writer committed the same version first."""


def table_root(table: DeltaTable) -> Path:
    return Path(unquote(table.table_uri.removeprefix("file://")))


def has_deletion_vectors(table: DeltaTable) -> bool:
    """Whether the table's protocol names the deletion vectors feature (the engine writes it merge-on-read)."""
    return DELETION_VECTORS in (table.protocol().reader_features or [])


def deletion_vectors(table: DeltaTable) -> dict[str, Descriptor]:
    """The deletion vector of each data file of the table's version that has one, by the file's path
    relative to the table: from the newest checkpoint at or before the version, then the commits after it."""
    if not has_deletion_vectors(table):
        return {}
    root, version = table_root(table), table.version()
    try:
        commit = (root / "_delta_log" / f"{version:020d}.json").stat()
    except FileNotFoundError:  # the version's commit is gone from the log (a log cleaned up after a checkpoint)
        return _deletion_vectors(root, version)
    return dict(_kept_deletion_vectors(root, version, commit.st_ino, commit.st_mtime_ns))


@lru_cache(maxsize=256)
def _kept_deletion_vectors(root: Path, version: int, inode: int, written_ns: int) -> dict[str, Descriptor]:
    """`_deletion_vectors`, kept by the identity of the version's commit file: a version of a table never
    changes, and a table written anew at the same place has another commit file. An update asks for
    a table's vectors at each read of it, each time replaying its log since the last checkpoint."""
    return _deletion_vectors(root, version)


def _deletion_vectors(root: Path, version: int) -> dict[str, Descriptor]:
    vectors: dict[str, Descriptor] = {}
    for kind, action in _file_actions(root, version):
        path = unquote(action["path"])
        if kind == "remove":
            vectors.pop(path, None)
        elif action.get("deletionVector"):
            vectors[path] = Descriptor.from_action(action["deletionVector"])
        else:
            vectors.pop(path, None)
    return vectors


def retained_deletion_vector_files(table: DeltaTable, retention_hours: float) -> set[Path]:
    """The DV files a VACUUM must keep: those of the version's files, and those of files removed within
    the retention period (a version that recent may still be read)."""
    root, since = table_root(table), now_ms() - retention_hours * 3600 * 1000
    kept = {descriptor.file(root) for descriptor in deletion_vectors(table).values() if descriptor.storage_type != "i"}
    for kind, action in _file_actions(root, table.version()):
        vector = action.get("deletionVector")
        recent = (action.get("deletionTimestamp") or 0) >= since
        if kind == "remove" and vector and vector.get("storageType") != "i" and recent:
            kept.add(Descriptor.from_action(vector).file(root))
    return kept


def _file_actions(root: Path, version: int) -> Iterator[tuple[str, dict]]:
    """The `add` and `remove` actions from the newest checkpoint at or before the table's `version` (its
    live files and tombstones), then each commit's after it: its removes before its adds (a commit
    names a path at most once per action type, and their order within it carries no meaning)."""
    log = root / "_delta_log"
    checkpoints: dict[int, list[str]] = {}
    for entry in os.scandir(log):
        head, _, rest = entry.name.partition(".checkpoint")
        if not rest or not head.isdigit() or int(head) > version:
            continue
        if V2_CHECKPOINT.fullmatch(rest):
            raise PipelineError(f"{log}: {entry.name} is a V2 checkpoint, which the engine does not read")
        if rest == ".parquet" or MULTI_PART_CHECKPOINT.fullmatch(rest):
            checkpoints.setdefault(int(head), []).append(entry.path)
        # Anything else is not a checkpoint (a temporary file a writer left when it died, say).
    start = 0
    if checkpoints:
        start = max(checkpoints)
        # (Read through ParquetFile: `read_table` imports pyarrow.dataset, which imports pandas.) Every
        # part's tombstones before any part's files: a part may hold the file a tombstone of
        # another part names with its earlier deletion vector.
        for kind in ("remove", "add"):
            for part in sorted(checkpoints[start]):
                for action in pq.ParquetFile(part).read(columns=[kind]).column(kind).to_pylist():
                    if action is not None:
                        yield kind, action
        start += 1
    for commit in range(start, version + 1):
        actions = [orjson.loads(line) for line in (log / f"{commit:020d}.json").read_bytes().splitlines() if line]
        for kind in ("remove", "add"):
            yield from ((kind, action[kind]) for action in actions if kind in action)


@dataclass
class RowsChanged:
    """The rows of a table's data files that its commits after some version changed, by data file path
    relative to the table."""

    whole_files: dict[str, BitMap64] = field(default_factory=dict)
    """Files added or removed whole with a data change, each with the positions its deletion vector
    already deleted then: its other rows are new, or gone."""
    positions: dict[str, BitMap64] = field(default_factory=dict)
    """Files left in place whose deletion vectors grew: the positions the commits deleted."""
    added: set[str] = field(default_factory=set)
    """Every file the commits wrote, compactions' too: the only files that can hold a row written since
    (a file added again with a new deletion vector only lost rows)."""


def rows_changed_since(table: DeltaTable, version: int) -> RowsChanged | None:
    """What the commits after `version` up to the table's version changed, from their `add` and `remove`
    actions: a file added with a data change is new rows; a file removed with one, its rows live until
    then gone; a file removed and added again in one commit, the positions its new deletion vector
    adds to the old one. Compactions (no data change) change no rows. None when a commit after
    `version` is no longer in the log (cleaned up), or `version` is past the table's."""
    root = table_root(table)
    if version > table.version():
        return None
    changed = RowsChanged()
    for commit in range(version + 1, table.version() + 1):
        try:
            lines = (root / "_delta_log" / f"{commit:020d}.json").read_bytes().splitlines()
        except FileNotFoundError:
            return None
        actions = [orjson.loads(line) for line in lines if line]
        removed = {
            unquote(action["remove"]["path"]): action["remove"]
            for action in actions
            if "remove" in action and action["remove"].get("dataChange", True)
        }
        for action in (action["add"] for action in actions if "add" in action):
            path = unquote(action["path"])
            if not action.get("dataChange", True):
                changed.added.add(path)
                continue
            before = removed.pop(path, None)
            if before is None:
                changed.added.add(path)
                _whole(changed, path, _deleted(root, action))
                continue
            # The same file with a new deletion vector: rows deleted, none written.
            deleted = _deleted(root, action) - _deleted(root, before)
            changed.positions[path] = changed.positions.get(path, BitMap64()) | deleted
        for path, action in removed.items():
            # Rows it had deleted before: deleted before `version` (unchanged since), or after (in `positions`).
            _whole(changed, path, _deleted(root, action))
    return changed


def _whole(changed: RowsChanged, path: str, deleted: BitMap64) -> None:
    """Count a file added or removed whole, less the positions it had deleted then (a file both added and
    removed since: its rows live at either)."""
    changed.whole_files[path] = changed.whole_files[path] & deleted if path in changed.whole_files else deleted


def _deleted(root: Path, action: dict) -> BitMap64:
    """The positions an `add` or `remove` action's deletion vector deletes."""
    vector = action.get("deletionVector")
    return Descriptor.from_action(vector).read(root) if vector else BitMap64()


def upgrade_actions(table: DeltaTable) -> list[dict]:
    """The protocol and metadata actions that let the table hold deletion vectors (none when it already
    does): reader version 3 and writer version 7 naming the `deletionVectors` feature beside those the
    table had (when it lacks them), `delta.enableDeletionVectors` on and the change data feed off."""
    protocol, metadata = table.protocol(), table.metadata()
    readers = list(protocol.reader_features or [])
    configuration = {**metadata.configuration, ENABLE_DELETION_VECTORS: "true", CHANGE_DATA_FEED: "false"}
    if DELETION_VECTORS in readers and configuration == metadata.configuration:
        return []
    metadata_action = {
        "metaData": {
            "id": metadata.id,
            "name": metadata.name,
            "description": metadata.description,
            "format": {"provider": "parquet", "options": {}},
            "schemaString": table.schema().to_json(),
            "partitionColumns": metadata.partition_columns,
            "configuration": configuration,
            "createdTime": metadata.created_time,
        }
    }
    if DELETION_VECTORS in readers:
        return [metadata_action]
    writers = list(protocol.writer_features or [])
    if protocol.min_writer_version < 7:
        writers = [
            feature
            for version, features in LEGACY_WRITER_FEATURES.items()
            if version <= protocol.min_writer_version
            for feature in features
        ]
    if protocol.min_reader_version == 2:
        readers = ["columnMapping"]
    upgraded = {
        "minReaderVersion": 3,
        "minWriterVersion": 7,
        "readerFeatures": [*readers, DELETION_VECTORS],
        "writerFeatures": [*writers, DELETION_VECTORS],
    }
    return [{"protocol": upgraded}, metadata_action]


def commit_info(operation: str, parameters: dict, metrics: dict, metadata: dict[str, str]) -> dict:
    """A commit's `commitInfo`, shaped as delta-rs writes it (its history reads custom metadata from the top level)."""
    return {
        "commitInfo": {
            "timestamp": now_ms(),
            "operation": operation,
            "operationParameters": parameters,
            "operationMetrics": metrics,
            "engineInfo": "mls2",
            **metadata,
        }
    }


def transactions(checkpoints: dict[str, int]) -> list[dict]:
    """Stream checkpoints as app transaction actions, committed with the rows they account for."""
    return [
        {"txn": {"appId": app, "version": version, "lastUpdated": now_ms()}} for app, version in checkpoints.items()
    ]


def commit(table: DeltaTable, actions: list[dict]) -> int:
    """Write `actions` as the table's next version, only if no other writer wrote it first (the file is
    written whole under a temporary name, then linked into place: put-if-absent, as delta-rs commits).
    Returns the new version; `Lakehouse.committed` checkpoints it when due, as for any writer."""
    log = table_root(table) / "_delta_log"
    version = table.version() + 1
    staged = log / f".{version:020d}.json.{uuid.uuid4()}.tmp"
    with open(staged, "xb") as pending:
        pending.write(b"".join(orjson.dumps(action) + b"\n" for action in actions))
        pending.flush()
        os.fsync(pending.fileno())
    try:
        os.link(staged, log / f"{version:020d}.json")
    except FileExistsError:
        raise CommitConflict(f"{table_root(table)}: version {version} was committed by another writer") from None
    finally:
        staged.unlink()
    return version


def checkpoint_if_due(table: DeltaTable) -> None:
    """Checkpoint the table's version when its last checkpoint (none: version 0) is CHECKPOINT_INTERVAL
    versions behind or more, whichever writer made them: delta-rs checkpoints on its own too (every
    `delta.checkpointInterval`, 100 by default, at versions 99, 199, ...), and a vacuum commits twice."""
    log = table_root(table) / "_delta_log"
    try:
        last = orjson.loads((log / "_last_checkpoint").read_bytes())["version"]
    except (OSError, ValueError, KeyError, TypeError):
        last = 0
    if type(last) is not int or not 0 <= last <= table.version():  # damaged, or of a log since restored
        last = 0
    if table.version() - last < CHECKPOINT_INTERVAL:
        return
    try:
        table.create_checkpoint()
    except Exception as error:  # the commit stands: readers replay the commits a checkpoint would hold
        logging.getLogger(__name__).warning("%s: no checkpoint at version %s: %s", log, table.version(), error)


def abandoned_commits(table: DeltaTable, retention_hours: float) -> list[Path]:
    """Staged commit files a writer left when it died before linking them into place, older than the retention."""
    log, since = table_root(table) / "_delta_log", time.time() - retention_hours * 3600
    return [path for path in log.glob(".*.json.*.tmp") if path.stat().st_mtime < since]


def now_ms() -> int:
    return int(time.time() * 1000)
