"""Snapshot files cloned for a publish on a file system that shares blocks between files (XFS with
reflink): the clone takes on disk only the blocks its patch writes, a reader of the served file sees
it unchanged, and `mls2 pipeline storage` counts shared blocks once.

The file system is an XFS image mounted on a loop device, which needs root, `mkfs.xfs` (Debian's
xfsprogs, which `.ci/run` installs) and a loop device: where one is missing the tests are skipped
saying which. On other file systems the copy is a plain copy (the last test)."""

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from conf.cli import app
from conf.settings import DataPaths, load_settings
from pipelines import run_update
from pipelines.embedded import disk_by_layer
from pipelines.snapshot import read_pointer, served_files
from pipelines.snapshot.copies import can_clone, clone_or_copy, release_preallocation
from tests.test_engine import land
from tests.test_storage import listings

MB = 2**20


@pytest.fixture(scope="module")
def xfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A mounted XFS file system with reflink, on an image file."""
    if os.geteuid() != 0:
        pytest.skip("mounting an XFS image needs root")
    if shutil.which("mkfs.xfs") is None:
        pytest.skip("mkfs.xfs is not installed (Debian's xfsprogs)")
    folder = tmp_path_factory.mktemp("xfs")
    image, mount = folder / "image", folder / "mount"
    mount.mkdir()
    with open(image, "wb") as file:
        file.truncate(2048 * MB)  # sparse; room for the 1 GB an update keeps free
    subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", str(image)], check=True)
    mounted = subprocess.run(["mount", "-o", "loop", str(image), str(mount)], capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"no loop device to mount the XFS image on: {mounted.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def snapshots_bytes(paths: DataPaths) -> int:
    [snapshots] = [layer for layer in disk_by_layer(paths) if layer.name == "snapshots"]
    return snapshots.bytes


def written(path: Path, data: bytes, at: int = 0) -> None:
    with open(path, "r+b" if path.exists() else "wb") as file:
        file.seek(at)
        file.write(data)
        os.fsync(file.fileno())


@pytest.mark.slow
def test_a_clone_takes_no_blocks_until_written_and_storage_counts_shared_blocks_once(xfs: Path) -> None:
    paths = DataPaths(xfs / "clones")
    paths.snapshots.mkdir(parents=True)
    served, clone = paths.snapshots / "served.duckdb", paths.snapshots / "next.duckdb"
    original = os.urandom(8 * MB)
    written(served, original)
    assert snapshots_bytes(paths) == 8 * MB

    assert clone_or_copy(served, clone) is True
    assert clone.read_bytes() == original
    assert snapshots_bytes(paths) == 8 * MB  # `du` counts 16 MB: each file's blocks

    written(clone, os.urandom(MB), at=2 * MB)
    assert snapshots_bytes(paths) == 9 * MB
    assert served.read_bytes() == original


@pytest.mark.slow
def test_blocks_xfs_reserves_past_the_end_of_a_file_appended_to_are_given_back(xfs: Path) -> None:
    """A documents file is appended to at every publish; XFS keeps blocks past its end after each."""
    documents = xfs / "appended.documents"
    written(documents, b"")
    for _ in range(40):
        with open(documents, "ab") as file:
            file.write(os.urandom(256 * 1024))
            os.fsync(file.fileno())
    content = documents.read_bytes()
    assert documents.stat().st_blocks * 512 > len(content) + MB  # reserved past the end
    release_preallocation(documents, xfs / "not-there")
    assert documents.stat().st_blocks * 512 == len(content) and documents.read_bytes() == content


@pytest.mark.slow
def test_a_publish_clones_the_served_file_which_its_reader_still_reads_unchanged(xfs: Path) -> None:
    settings = load_settings(mls2_data_dir=xfs / "pipeline")
    land(settings, "s1", listings(1))
    run_update(settings.paths)
    served = served_files(settings.paths.snapshots, read_pointer(settings.paths.snapshot_pointer))["property"]
    reader = duckdb.connect(str(served), read_only=True)  # a reader holds it: the next publish cannot patch it
    price = "SELECT ListPrice::INTEGER FROM property WHERE ListingKey = 'QOBRIX_a'"
    assert reader.execute(price).fetchall() == [(100_001,)]

    land(settings, "s2", listings(2)[:2])
    run_update(settings.paths)
    files = served_files(settings.paths.snapshots, read_pointer(settings.paths.snapshot_pointer))
    assert files["property"] != served
    with duckdb.connect(str(files["property"]), read_only=True) as published:
        assert published.execute(price).fetchall() == [(100_002,)]
    assert reader.execute(price).fetchall() == [(100_001,)]
    reader.close()

    assert can_clone(settings.paths.root)
    shown = CliRunner().invoke(app, ["pipeline", "storage"], env={"MLS2_DATA_DIR": str(settings.paths.root)})
    assert "Its file system clones files" in " ".join(shown.output.split())

    snapshot_files = [path for path in settings.paths.snapshots.rglob("*") if path.is_file()]
    each_files_blocks = sum(path.stat().st_blocks * 512 for path in snapshot_files)
    # The clones of the Property and Media files share what their patches did not write.
    assert snapshots_bytes(settings.paths) < each_files_blocks - served.stat().st_size // 2


def test_giving_back_reserved_blocks_leaves_a_file_as_it_was(tmp_path: Path) -> None:
    written(tmp_path / "documents", original := os.urandom(MB + 17))
    release_preallocation(tmp_path / "documents", tmp_path / "removed meanwhile")
    assert (tmp_path / "documents").read_bytes() == original


def test_a_copy_for_the_next_publish_holds_the_bytes_and_a_write_to_it_leaves_the_served_file(
    tmp_path: Path,
) -> None:
    """On any file system: a clone where blocks can be shared, else a plain copy."""
    served, copy = tmp_path / "served.duckdb", tmp_path / "next.duckdb"
    original = os.urandom(2 * MB)
    served.write_bytes(original)
    clone_or_copy(served, copy)
    assert copy.read_bytes() == original
    written(copy, b"patched", at=MB)
    assert served.read_bytes() == original and copy.read_bytes() != original
