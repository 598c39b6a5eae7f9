"""Durable file writes shared by every part that keeps state on disk."""

import os
from pathlib import Path


def write_atomically(path: Path, data: bytes) -> None:
    """Write to a hidden temporary file beside `path`, flush to disk, then rename into place.

    Readers see the old file or the new one, never a part; a crash leaves only the temporary.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
