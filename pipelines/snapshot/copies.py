"""How a snapshot file is duplicated for the next publish without writing its bytes again, and
given back the blocks the file system reserved beyond its end.

A documents file is only ever appended to, so the next snapshot starts from a hard link to it. A
DuckDB file and its places index are patched in place, so the next snapshot needs its own file,
not a link: on a file system with block sharing (XFS with reflink, Btrfs), a clone that shares
every block with the served file until the patch writes some. The patched clone then takes on
disk only the blocks the patch wrote, not a second copy of the table. Where the file system
cannot clone (ext4), the file is copied.

XFS reserves blocks past the end of a file written and closed again and again (the documents file
a publish appends to, a patched DuckDB file), up to the file's own size, and keeps them for minutes
after (its speculative preallocation). A publish gives them back as soon as it has written.
"""

import fcntl
import os
import shutil
import tempfile
from contextlib import suppress
from pathlib import Path

FICLONE = 0x40049409
"""Linux's ioctl that makes a file share all of another's blocks (`_IOW(0x94, 9, int)` in linux/fs.h)."""


def clone_or_copy(source: Path, target: Path) -> bool:
    """`target` as a clone of `source` sharing its blocks; a copy where the file system cannot clone.
    Returns whether it was cloned."""
    target.unlink(missing_ok=True)  # never written through: it may be a link to a file a reader holds
    with open(source, "rb") as original, open(target, "xb") as clone:
        try:
            fcntl.ioctl(clone.fileno(), FICLONE, original.fileno())
            return True
        except OSError:
            pass  # no block sharing here (or across file systems): copied below
    shutil.copyfile(source, target)
    return False


def release_preallocation(*paths: Path) -> None:
    """Free the blocks reserved beyond the end of each file (truncating it to its own size, which
    leaves its bytes as they are); a file that is not there is passed over. Only for files no one
    else writes: one appended to meanwhile would lose what came after its size was read."""
    for path in paths:
        with suppress(FileNotFoundError), open(path, "r+b") as file:
            file.truncate(os.fstat(file.fileno()).st_size)


def can_clone(folder: Path) -> bool:
    """Whether files in `folder` can be cloned (tried on a small file of its own, then removed)."""
    with tempfile.TemporaryDirectory(dir=folder, prefix=".clone-probe-") as probe:
        source = Path(probe, "source")
        source.write_bytes(b"\0" * 4096)
        return clone_or_copy(source, Path(probe, "clone"))


def link_or_copy(source: Path, target: Path) -> None:
    """`target` as a hard link to `source` (appending to it leaves what `source`'s readers read as
    it was), or a copy where the file system has no hard links."""
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
