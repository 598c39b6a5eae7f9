"""The sync state saved beside the landing zone, for runs whose disk is new each time (a Databricks
job cluster): restored before a sync when this machine has none, saved after every sync.

SQLite needs a local disk (object storage and FUSE-mounted Volumes have no locks and no random
writes), so the sync works on a local copy and the saved file is replaced whole.
"""

import logging
import os
import posixpath
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import fsspec

from ingestion.errors import IngestionError

log = logging.getLogger(__name__)


class SavedStateError(IngestionError):
    """The saved sync state cannot be read or written; the message names MLS2_SYNC_STATE_URL."""


def restore_state(url: str, local: Path) -> bool:
    """Copy the saved state to `local` when this machine has none; whether a copy was restored.
    A state already here is at least as new as the saved one (every sync saves what it leaves)."""
    if local.exists():
        return False
    try:
        fs, path = fsspec.core.url_to_fs(url)
        if not fs.exists(path):
            return False
        local.parent.mkdir(parents=True, exist_ok=True)
        partial = local.with_name(local.name + ".restoring")
        fs.get(path, str(partial))
    except (OSError, ImportError, ValueError) as error:  # unreadable; a scheme fsspec lacks or cannot load
        raise SavedStateError(f"cannot read the saved sync state MLS2_SYNC_STATE_URL={url}: {error}") from None
    try:
        with closing(sqlite3.connect(partial)) as check:
            found = {row[0] for row in check.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as error:
        partial.unlink()
        raise SavedStateError(
            f"the saved sync state MLS2_SYNC_STATE_URL={url} is not a sync state ({error}); "
            "move it away to start over with a full sync"
        ) from None
    if "watermarks" not in found:
        partial.unlink()
        raise SavedStateError(f"the saved sync state MLS2_SYNC_STATE_URL={url} holds no watermarks table")
    os.replace(partial, local)
    return True


def save_state(local: Path, url: str) -> None:
    """Replace the saved state with a consistent copy of `local` (SQLite's backup), whole or not at all;
    nothing when there is no local state (a sync that failed before making one)."""
    if not local.exists():
        return
    snapshot = local.with_name(local.name + ".saving")
    try:
        with closing(sqlite3.connect(local)) as source, closing(sqlite3.connect(snapshot)) as target:
            source.backup(target)
        fs, path = fsspec.core.url_to_fs(url)
        fs.makedirs(posixpath.dirname(path), exist_ok=True)
        fs.put_file(str(snapshot), f"{path}.partial")
        fs.mv(f"{path}.partial", path)
    except (OSError, ImportError, ValueError, sqlite3.Error) as error:
        raise SavedStateError(f"cannot save the sync state to MLS2_SYNC_STATE_URL={url}: {error}") from None
    finally:
        snapshot.unlink(missing_ok=True)


@contextmanager
def kept_at(url: str | None, local: Path) -> Iterator[None]:
    """Restore the state before the block and save it after, also after a failed sync (its cursors
    let the next run resume); there a failed save is logged, not raised over the sync's own error."""
    if url is None:
        yield
        return
    restore_state(url, local)
    try:
        yield
    except BaseException:
        try:
            save_state(local, url)
        except SavedStateError as error:
            log.warning("%s", error)
        raise
    save_state(local, url)
