"""Merge-on-read: the engine's deletion vectors, read back by delta-rs (an independent reader), against a
reference in Python; a writer killed between its DV file and its commit; compaction; vacuum."""

import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from pyroaring import BitMap64
from typer.testing import CliRunner

from conf.cli import app
from pipelines._engine import delta_log
from pipelines._engine import lakehouse as lakehouse_module
from pipelines._engine.deletion_vectors import (
    DeletionVectorError,
    Descriptor,
    deserialize,
    serialize,
    write_file,
    z85_decode,
    z85_encode,
)
from pipelines._engine.delta_log import deletion_vectors
from pipelines._engine.lakehouse import Lakehouse, register_changes_since, register_delta
from tests.conftest import delta_rows

NAME = "s.listings"


def test_z85_is_zeromq_base85() -> None:
    """The specification's own example (RFC 32)."""
    assert z85_encode(bytes.fromhex("864FD26FB559F75B")) == "HelloWorld"
    assert z85_decode("HelloWorld") == bytes.fromhex("864FD26FB559F75B")
    with pytest.raises(DeletionVectorError, match="not a Z85 character"):
        z85_decode("Hello,orld")


def test_a_deletion_vector_file_holds_bitmaps_with_their_sizes_and_checksums(tmp_path: Path) -> None:
    first, second = BitMap64([3, 4, 7, 11, 18, 29]), BitMap64([0, 2**33 + 5])
    one, two = write_file(tmp_path, [first, second])
    assert (one.offset, two.offset) == (1, 1 + 4 + one.size + 4)
    assert (one.read(tmp_path), two.read(tmp_path)) == (first, second)
    assert deserialize(serialize(first)) == first
    stored = one.file(tmp_path)
    assert stored.name.startswith("deletion_vector_") and stored.read_bytes()[0] == 1
    corrupted = bytearray(stored.read_bytes())
    corrupted[one.offset + 4 + 6] ^= 0xFF
    stored.write_bytes(bytes(corrupted))
    with pytest.raises(DeletionVectorError, match="checksum"):
        one.read(tmp_path)
    lying = Descriptor(two.path_or_inline, two.offset, two.size, cardinality=3)
    with pytest.raises(DeletionVectorError, match="holds 2 rows, its descriptor says 3"):
        lying.read(tmp_path)


def create(lakehouse: Lakehouse, con: duckdb.DuckDBPyConnection, rows: int) -> dict[int, str]:
    con.execute(f"CREATE OR REPLACE TABLE seed AS SELECT i AS id, 'v0-' || i AS v FROM range({rows}) t(i)")
    lakehouse.commit_files(lakehouse.write_files(con, NAME, "seed"), mode="overwrite")
    return {i: f"v0-{i}" for i in range(rows)}


def merge(lakehouse: Lakehouse, con: duckdb.DuckDBPyConnection, upserts: dict[int, str], deletes: set[int]) -> int:
    """What AUTO CDC does with a batch: the keys' rows marked deleted, the upserts added."""
    con.execute("CREATE OR REPLACE TABLE batch (id BIGINT, v VARCHAR)")
    if upserts:
        con.executemany("INSERT INTO batch VALUES (?, ?)", list(upserts.items()))
    con.execute("CREATE OR REPLACE TABLE touched (id BIGINT)")
    if upserts or deletes:
        con.executemany("INSERT INTO touched VALUES (?)", [(key,) for key in {*upserts, *deletes}])
    register_delta(con, "current_positions", lakehouse.table(NAME), positions=True)
    con.execute(
        "CREATE OR REPLACE TABLE replaced AS SELECT __file, __row FROM current_positions c SEMI JOIN touched USING (id)"
    )
    written = lakehouse.write_files(con, NAME, "batch") if upserts else None
    return lakehouse.delete_and_add(con, NAME, "replaced", written, checkpoints={"test": 1})


def engine_rows(lakehouse: Lakehouse, con: duckdb.DuckDBPyConnection) -> list[tuple]:
    register_delta(con, "now", lakehouse.table(NAME))
    return sorted(con.execute("SELECT id, v FROM now").fetchall())


def delta_rs_rows(lakehouse: Lakehouse) -> list[tuple]:
    return sorted((row["id"], row["v"]) for row in delta_rows(DeltaTable(str(lakehouse.path(NAME)))).to_pylist())


def test_merges_with_deletion_vectors_read_the_same_by_delta_rs_the_engine_and_python(tmp_path: Path) -> None:
    lakehouse, con, draw = Lakehouse(tmp_path), duckdb.connect(), random.Random(29)
    expected = create(lakehouse, con, 30_000)
    for round_number in range(1, 9):
        keys = draw.sample(range(31_000), 400)
        upserts = {key: f"v{round_number}-{key}" for key in keys[:300]}
        deletes = set(keys[300:])
        merge(lakehouse, con, upserts, deletes)
        expected.update(upserts)
        for key in deletes:
            expected.pop(key, None)
        reference = sorted(expected.items())
        assert engine_rows(lakehouse, con) == reference
        assert delta_rs_rows(lakehouse) == reference
    table = DeltaTable(str(lakehouse.path(NAME)))
    assert "deletionVectors" in table.protocol().reader_features
    assert table.metadata().configuration["delta.enableDeletionVectors"] == "true"
    assert table.transaction_version("test") == 1
    # delta-rs's own reading of each file's DV marks exactly the positions ours do.
    root = lakehouse.path(NAME)
    ours = {str(root / path): set(d.read(root)) for path, d in delta_log.deletion_vectors(table).items()}
    theirs = {
        row["filepath"].removeprefix("file://"): {i for i, keep in enumerate(row["selection_vector"]) if not keep}
        for row in pa.table(table.deletion_vectors()).to_pylist()
    }
    assert ours and ours == theirs


def test_a_merge_rewrites_no_untouched_row(tmp_path: Path) -> None:
    """The point of merge-on-read: the commit adds the changed rows and a DV, not a copy of the file."""
    lakehouse, con = Lakehouse(tmp_path), duckdb.connect()
    create(lakehouse, con, 50_000)
    before = set(lakehouse.table(NAME).file_uris())
    merge(lakehouse, con, {7: "new", 49_000: "new"}, {3})
    table = lakehouse.table(NAME)
    added = set(table.file_uris()) - before
    assert before <= set(table.file_uris())
    assert sum(pq.read_metadata(uri).num_rows for uri in added) == 2
    [commit] = table.history(1)
    assert commit["operation"] == "MERGE" and commit["operationMetrics"]["num_deletion_vectors"] >= 1


def test_a_file_whose_rows_are_all_deleted_leaves_the_table(tmp_path: Path) -> None:
    lakehouse, con = Lakehouse(tmp_path), duckdb.connect()
    create(lakehouse, con, 100)
    [only] = lakehouse.table(NAME).file_uris()
    merge(lakehouse, con, {1: "kept"}, set(range(100)))
    assert only not in lakehouse.table(NAME).file_uris()
    assert engine_rows(lakehouse, con) == delta_rs_rows(lakehouse) == [(1, "kept")]


def test_a_writer_killed_between_its_deletion_vector_file_and_its_commit_leaves_the_table_as_before(
    tmp_path: Path,
) -> None:
    lakehouse, con = Lakehouse(tmp_path), duckdb.connect()
    expected = create(lakehouse, con, 5_000)
    version = lakehouse.table(NAME).version()
    script = textwrap.dedent(
        f"""
        import os, signal, duckdb
        from pathlib import Path
        from pipelines._engine import delta_log
        from tests.test_deletion_vectors import Lakehouse, merge
        delta_log.commit = lambda table, actions: os.kill(os.getpid(), signal.SIGKILL)
        merge(Lakehouse(Path({str(tmp_path)!r})), duckdb.connect(), {{1: "lost"}}, {{2}})
        """
    )
    killed = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[1], capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    root = lakehouse.path(NAME)
    assert list(root.glob("deletion_vector_*.bin")), "the child died before writing its DV file"
    lakehouse.forget(NAME)
    assert lakehouse.table(NAME).version() == version
    assert engine_rows(lakehouse, con) == delta_rs_rows(lakehouse) == sorted(expected.items())
    # The rerun converges, and a vacuum removes what the killed writer left.
    merge(lakehouse, con, {1: "new"}, {2})
    expected.update({1: "new"})
    expected.pop(2)
    assert engine_rows(lakehouse, con) == delta_rs_rows(lakehouse) == sorted(expected.items())
    live = {d.file(root) for d in delta_log.deletion_vectors(lakehouse.table(NAME)).values()}
    lakehouse.vacuum(retention_hours=0)
    assert set(root.glob("deletion_vector_*.bin")) == live
    assert engine_rows(lakehouse, con) == delta_rs_rows(lakehouse) == sorted(expected.items())


def test_vacuum_keeps_every_live_file_of_a_table_with_deletion_vectors(tmp_path: Path) -> None:
    lakehouse, con, draw = Lakehouse(tmp_path), duckdb.connect(), random.Random(3)
    expected = create(lakehouse, con, 20_000)
    for round_number in range(4):
        upserts = {key: f"v{round_number}" for key in draw.sample(range(20_000), 200)}
        merge(lakehouse, con, upserts, set())
        expected.update(upserts)
    root = lakehouse.path(NAME)
    before = set(root.glob("deletion_vector_*.bin"))
    removed = lakehouse.vacuum(retention_hours=0)
    table = lakehouse.table(NAME)
    live = {d.file(root) for d in delta_log.deletion_vectors(table).values()}
    assert removed[NAME] > 0 and set(root.glob("deletion_vector_*.bin")) == live < before
    assert all(Path(uri).exists() for uri in table.file_uris())
    assert engine_rows(lakehouse, con) == delta_rs_rows(lakehouse) == sorted(expected.items())


def test_vacuum_with_a_retention_keeps_what_recent_versions_read(tmp_path: Path) -> None:
    """A version from within the retention period still reads its rows after a vacuum: the DV files
    its files had, replaced since, are kept (the tombstones name them)."""
    lakehouse, con = Lakehouse(tmp_path), duckdb.connect()
    expected = create(lakehouse, con, 20_000)
    merge(lakehouse, con, {5: "first"}, {6})
    before_second = lakehouse.table(NAME).version()
    expected_then = {**expected, 5: "first"}
    expected_then.pop(6)
    merge(lakehouse, con, {7: "second"}, {8})
    lakehouse.vacuum(retention_hours=1)
    older = DeltaTable(str(lakehouse.path(NAME)), version=before_second)
    assert sorted((row["id"], row["v"]) for row in delta_rows(older).to_pylist()) == sorted(expected_then.items())
    register_delta(con, "older", older)
    assert sorted(con.execute("SELECT id, v FROM older").fetchall()) == sorted(expected_then.items())


def test_a_table_past_its_checkpoint_reads_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deletion vectors are read back from a checkpoint (delta-rs writes them every CHECKPOINT_INTERVAL
    versions) and the commits after it."""
    monkeypatch.setattr(delta_log, "CHECKPOINT_INTERVAL", 5)
    lakehouse, con, draw = Lakehouse(tmp_path), duckdb.connect(), random.Random(11)
    expected = create(lakehouse, con, 3_000)
    for round_number in range(12):
        keys = draw.sample(range(3_000), 20)
        upserts = {key: f"v{round_number}" for key in keys[:15]}
        merge(lakehouse, con, upserts, set(keys[15:]))
        expected.update(upserts)
        for key in keys[15:]:
            expected.pop(key, None)
    log = lakehouse.path(NAME) / "_delta_log"
    assert list(log.glob("*.checkpoint.parquet")), "no checkpoint was written"
    assert engine_rows(lakehouse, con) == delta_rs_rows(lakehouse) == sorted(expected.items())


def test_changes_with_the_columns_in_another_order_merge(tmp_path: Path) -> None:
    """Delta reads columns by name: rows that carry the table's columns in another order are merged."""
    lakehouse, con = Lakehouse(tmp_path), duckdb.connect()
    expected = create(lakehouse, con, 1_000)
    register_delta(con, "current_positions", lakehouse.table(NAME), positions=True)
    con.execute("CREATE OR REPLACE TABLE replaced AS SELECT __file, __row FROM current_positions WHERE id = 3")
    con.execute("CREATE OR REPLACE TABLE reordered AS SELECT 'moved' AS v, 3::BIGINT AS id")
    written = lakehouse.write_files(con, NAME, "reordered")
    lakehouse.delete_and_add(con, NAME, "replaced", written)
    expected[3] = "moved"
    assert engine_rows(lakehouse, con) == delta_rs_rows(lakehouse) == sorted(expected.items())
    # Read in the table's column order, even when the only file left holds them in another.
    merge(lakehouse, con, {}, set(expected) - {3})
    assert [Path(uri).name for uri in lakehouse.table(NAME).file_uris()] == [file.name for file, _ in written.files]
    register_delta(con, "now", lakehouse.table(NAME))
    assert [row[0] for row in con.execute("DESCRIBE now").fetchall()] == ["id", "v"]
    assert engine_rows(lakehouse, con) == [(3, "moved")]


def test_a_temporary_file_beside_the_checkpoints_is_not_taken_for_one(tmp_path: Path) -> None:
    """delta-rs's object store writes a checkpoint under a temporary name, then renames it: a writer
    that died in between leaves that file, which no reader may take for a checkpoint (nor refuse)."""
    lakehouse, con = Lakehouse(tmp_path), duckdb.connect()
    expected = create(lakehouse, con, 100)
    merge(lakehouse, con, {1: "x"}, set())
    expected[1] = "x"
    version = lakehouse.table(NAME).version()
    (lakehouse.path(NAME) / "_delta_log" / f"{version:020d}.checkpoint.parquet#1").write_bytes(b"partial")
    lakehouse.forget(NAME)
    assert engine_rows(lakehouse, con) == sorted(expected.items())


def test_compaction_rewrites_files_mostly_deleted_and_keeps_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lakehouse, con = Lakehouse(tmp_path), duckdb.connect()
    expected = create(lakehouse, con, 10_000)
    before = lakehouse.fingerprint(NAME)
    [big] = lakehouse.table(NAME).file_uris()
    # The merge alone first (its compaction threshold out of reach), then the compaction.
    monkeypatch.setattr(lakehouse_module, "COMPACT_DELETED_FRACTION", 2.0)
    deleted = set(range(0, 10_000, 5)) | set(range(1, 10_000, 5)) | set(range(2, 10_000, 5))
    merge(lakehouse, con, {}, deleted)
    for key in deleted:
        expected.pop(key)
    merged = lakehouse.fingerprint(NAME)
    assert merged != before and delta_log.deletion_vectors(lakehouse.table(NAME))
    assert lakehouse.compact(con, NAME) == 1
    table = lakehouse.table(NAME)
    assert big not in table.file_uris() and not delta_log.deletion_vectors(table)
    assert [commit["operation"] for commit in table.history(2)] == ["OPTIMIZE", "MERGE"]
    assert engine_rows(lakehouse, con) == delta_rs_rows(lakehouse) == sorted(expected.items())
    assert lakehouse.fingerprint(NAME) == merged, "a compaction keeps the rows: what reads them need not recompute"
    # A later commit that adds no file (a view recomputed to the same rows records its inputs so)
    # leaves the fingerprint as it was.
    lakehouse.append(NAME, lakehouse.table(NAME).schema().to_arrow().empty_table())
    assert lakehouse.fingerprint(NAME) == merged

    # Past the threshold, a merge compacts the files it leaves mostly deleted at once.
    monkeypatch.setattr(lakehouse_module, "COMPACT_DELETED_FRACTION", 0.5)
    [compacted] = lakehouse.table(NAME).file_uris()
    survivors = sorted(expected)[: len(expected) * 3 // 5]
    merge(lakehouse, con, {}, set(survivors))
    for key in survivors:
        expected.pop(key)
    table = lakehouse.table(NAME)
    assert compacted not in table.file_uris() and not delta_log.deletion_vectors(table)
    assert [commit["operation"] for commit in table.history(2)] == ["OPTIMIZE", "MERGE"]
    assert engine_rows(lakehouse, con) == delta_rs_rows(lakehouse) == sorted(expected.items())


def changed_ids(lakehouse: Lakehouse, con: duckdb.DuckDBPyConnection, since: int) -> set[int] | None:
    """The keys of the rows the table's commits after `since` changed, as the publish reads them, having
    checked that the files written since hold every current row of those keys."""
    if not register_changes_since(con, "changed", lakehouse.table(NAME), since):
        return None
    keys = {key for (key,) in con.execute("SELECT DISTINCT id FROM changed").fetchall()}
    register_delta(con, "current", lakehouse.table(NAME))
    current = con.execute("SELECT id, v FROM current WHERE id IN (SELECT id FROM changed)").fetchall()
    written = con.execute("SELECT id, v FROM changed_written WHERE id IN (SELECT id FROM changed)").fetchall()
    assert sorted(written) == sorted(current), "the files written since hold the changed keys' current rows"
    return keys


def test_the_rows_changed_since_a_version_hold_every_changed_key_and_only_keys_merges_touched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a publish compares by key: from any earlier version, every key whose row differs now is
    among the changed rows, and no key that no merge since touched (a compaction changes no row)."""
    monkeypatch.setattr(lakehouse_module, "COMPACT_DELETED_FRACTION", 0.05)
    lakehouse, con, draw = Lakehouse(tmp_path), duckdb.connect(), random.Random(30)
    expected = create(lakehouse, con, 5_000)
    states = {lakehouse.version(NAME): dict(expected)}
    touched_by: dict[int, set[int]] = {}
    for round_number in range(1, 7):
        keys = draw.sample(range(5_500), 200)
        upserts = {key: f"v{round_number}-{key}" if key % 7 else expected.get(key, "new") for key in keys[:150]}
        deletes = set(keys[150:])
        merge(lakehouse, con, upserts, deletes)
        expected.update(upserts)
        for key in deletes:
            expected.pop(key, None)
        touched_by[lakehouse.version(NAME)] = set(keys)
        states[lakehouse.version(NAME)] = dict(expected)
    operations = [commit["operation"] for commit in lakehouse.table(NAME).history()]
    assert "OPTIMIZE" in operations, "the merges' compactions are among the commits"
    now = lakehouse.version(NAME)
    for since, before in list(states.items())[:-1]:
        differing = {key for key in before.keys() | expected.keys() if before.get(key) != expected.get(key)}
        touched = set().union(*(keys for version, keys in touched_by.items() if version > since))
        changed = changed_ids(lakehouse, con, since)
        assert differing and differing <= changed <= touched, since
    assert changed_ids(lakehouse, con, now) == set()
    optimized = lakehouse.compact(con, NAME, deleted_fraction=0.0, small_files=0)
    assert optimized and changed_ids(lakehouse, con, now) == set(), "a compaction changes no row"


def test_the_files_written_since_leave_out_a_file_that_only_gained_a_deletion_vector(tmp_path: Path) -> None:
    """A merge marks rows of the big file deleted and writes its few rows anew: the big file, added again
    with its new deletion vector, holds no row written since, so a publish does not read it."""
    lakehouse, con = Lakehouse(tmp_path), duckdb.connect()
    create(lakehouse, con, 5_000)
    since = lakehouse.version(NAME)
    merge(lakehouse, con, {key: f"v1-{key}" for key in range(10)}, set())
    changed = delta_log.rows_changed_since(lakehouse.table(NAME), since)
    assert changed is not None and len(changed.positions) == 1 and len(changed.added) == 1
    assert changed.added.isdisjoint(changed.positions)
    assert changed_ids(lakehouse, con, since) == set(range(10))
    [(written,)] = con.execute("SELECT count(*) FROM changed_written").fetchall()
    assert written == 10


def test_a_file_removed_whole_changes_only_the_rows_it_still_held(tmp_path: Path) -> None:
    """A row deleted before the version asked about is unchanged since, though its file goes later."""
    lakehouse, con = Lakehouse(tmp_path), duckdb.connect()
    create(lakehouse, con, 10)
    merge(lakehouse, con, {1: "v1-1"}, set())
    since = lakehouse.version(NAME)
    [first] = [uri for uri in lakehouse.table(NAME).file_uris() if uri in delta_rs_files_with_vectors(lakehouse)]
    merge(lakehouse, con, {key: f"v2-{key}" for key in range(10) if key != 1}, set())
    assert first not in lakehouse.table(NAME).file_uris(), "the first file, all its rows replaced, is gone"
    assert changed_ids(lakehouse, con, since) == set(range(10)) - {1}


def delta_rs_files_with_vectors(lakehouse: Lakehouse) -> set[str]:
    root = lakehouse.path(NAME)
    return {str(root / path) for path in delta_log.deletion_vectors(lakehouse.table(NAME))}


def test_rows_changed_since_a_version_the_log_no_longer_holds_are_not_guessed(tmp_path: Path) -> None:
    lakehouse, con = Lakehouse(tmp_path), duckdb.connect()
    create(lakehouse, con, 1_000)
    merge(lakehouse, con, {1: "v1"}, {2})
    merge(lakehouse, con, {3: "v2"}, set())
    assert changed_ids(lakehouse, con, 0) == {1, 2, 3}
    assert changed_ids(lakehouse, con, lakehouse.version(NAME) + 1) is None, "a version from the future"
    # What a log cleanup leaves: a checkpoint, and no commit before it.
    DeltaTable(str(lakehouse.path(NAME))).create_checkpoint()
    for version in (0, 1):
        (lakehouse.path(NAME) / "_delta_log" / f"{version:020d}.json").unlink()
    assert changed_ids(lakehouse, con, 0) is None, "a commit cleaned from the log"
    assert changed_ids(lakehouse, con, 1) == {3}


def test_mls2_pipeline_optimize_compacts_merge_on_read_tables_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLS2_DATA_DIR", str(tmp_path))
    from conf.settings import load_settings

    lakehouse, con = Lakehouse(load_settings().paths.lakehouse), duckdb.connect()
    expected = create(lakehouse, con, 2_000)
    merge(lakehouse, con, {5: "x"}, {6})
    expected.update({5: "x"})
    expected.pop(6)
    con.execute("CREATE TABLE appended AS SELECT 1 AS id")
    for _ in range(3):
        lakehouse.append("s.appended", con.sql("SELECT * FROM appended").to_arrow_table())
    appended_files = set(lakehouse.table("s.appended").file_uris())
    held, merged_files = lakehouse.fingerprint(NAME), set(lakehouse.table(NAME).file_uris())
    result = CliRunner().invoke(app, ["pipeline", "optimize"])
    assert result.exit_code == 0, result.output
    assert f"{len(merged_files)} files rewritten in 1 of 1 merge-on-read tables" in result.output
    lakehouse.forget(NAME)
    table = lakehouse.table(NAME)
    assert not delta_log.deletion_vectors(table) and not set(table.file_uris()) & merged_files
    assert engine_rows(lakehouse, con) == delta_rs_rows(lakehouse) == sorted(expected.items())
    assert lakehouse.fingerprint(NAME) == held, "a compaction keeps the rows, so what reads them need not recompute"
    assert set(Lakehouse(lakehouse.root).table("s.appended").file_uris()) == appended_files


def test_a_table_written_anew_at_the_same_place_and_version_is_not_read_with_the_old_ones_vectors(
    tmp_path: Path,
) -> None:
    """The engine keeps each version's deletion vectors by its commit file: a table dropped and written
    again, merged on read to the same version (a full refresh of a table written merge-on-read), is
    read with its own."""
    lakehouse, con = Lakehouse(tmp_path), duckdb.connect()
    create(lakehouse, con, 1_000)
    merge(lakehouse, con, {}, {1, 2})
    version = lakehouse.table(NAME).version()
    old = deletion_vectors(lakehouse.table(NAME))
    assert old
    lakehouse.drop(NAME)
    expected = create(lakehouse, con, 1_000)
    while lakehouse.table(NAME).version() < version - 1:
        lakehouse.append(NAME, pa.table({"id": pa.array([], pa.int64()), "v": pa.array([], pa.string())}))
    merge(lakehouse, con, {}, {5})
    del expected[5]
    assert lakehouse.table(NAME).version() == version
    assert deletion_vectors(lakehouse.table(NAME)) != old
    assert engine_rows(lakehouse, con) == sorted(expected.items())
