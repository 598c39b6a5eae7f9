"""The embedded engine over landing files: incremental bronze, AUTO CDC, quarantine, publishing."""

import gzip
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import orjson
import pytest
from deltalake import DeltaTable

from conf.entities import entities
from conf.mappings import reso_lookups
from conf.settings import Settings
from graphql_odata.backends.snapshot import SnapshotBackend
from graphql_odata.odata.fetch import read_entity
from graphql_odata.odata.query import entity_set, parse_query
from ingestion.landing import LandingWriter
from pipelines import Dataset, Expectation, PipelineBusy, UpdateFailed, load_graph, run_update
from pipelines._engine import context, publish
from pipelines._engine.context import QUARANTINE
from pipelines._engine.events import EVENT_LOG
from pipelines._engine.flows.materialized_view import replaced_digest
from pipelines._engine.lakehouse import Lakehouse
from pipelines._engine.lock import UpdateLock
from pipelines._engine.maintenance import vacuum_lakehouse
from pipelines.declaration import build_graph
from pipelines.embedded import UpdateCanceled
from pipelines.snapshot import DocumentFiles, open_documents, open_snapshot, places, publishing_seconds
from pipelines.snapshot.documents import documents_of, read_blocks
from pipelines.snapshot.pointer import LAYOUT
from tests.conftest import data_quality, delta_rows

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def prop(key: str, minutes: int, price: float = 100_000, status: str = "available") -> dict:
    stamp = (T0 + timedelta(minutes=minutes)).isoformat()
    return {
        "id": key,
        "ref": 1,
        "name": key,
        "property_type": "apartment",
        "status": status,
        "list_selling_price_amount": price,
        "created": T0.isoformat(),
        "modified": stamp,
    }


PROPERTY_CHAIN = ["qobrix_bronze.properties", "qobrix_silver.property", "reso_gold.property"]


def land(settings: Settings, sync_id: str, records: list[dict], operation: str = "upsert") -> None:
    writer = LandingWriter(settings.landing_root, sync_id, started=T0)
    writer.write_page(entities()["properties"], records, operation=operation)


def statuses(result, names: list[str] = PROPERTY_CHAIN) -> list[str]:
    by_name = {flow.dataset: flow.status for flow in result.flows}
    return [by_name.get(name) for name in names]


def table(settings: Settings, name: str) -> DeltaTable:
    return Lakehouse(settings.paths.lakehouse).table(name)


def rows(settings: Settings, name: str) -> list[dict]:
    return sorted(delta_rows(table(settings, name)).to_pylist(), key=lambda row: str(row))


def gold_prices(settings: Settings) -> dict[str, float]:
    return {row["ListingKey"]: float(row["ListPrice"]) for row in rows(settings, "reso_gold.property")}


def test_bronze_reads_only_new_files_and_a_rerun_changes_nothing(settings: Settings) -> None:
    land(settings, "s1", [prop("a", 1), prop("b", 1)])
    first = run_update(settings.paths)
    assert statuses(first) == ["COMPLETED"] * 3 and first.published
    versions = {name: table(settings, name).version() for name in PROPERTY_CHAIN}

    again = run_update(settings.paths)
    assert {f.status for f in again.flows} == {"SKIPPED"} and again.published is None
    assert {name: table(settings, name).version() for name in versions} == versions

    land(settings, "s2", [prop("c", 2)])
    third = run_update(settings.paths)
    bronze = next(f for f in third.flows if f.dataset == "qobrix_bronze.properties")
    assert bronze.input_records == 1
    assert {row["source_file"].split("/")[2] for row in rows(settings, "qobrix_bronze.properties")} == {"s1", "s2"}
    assert set(gold_prices(settings)) == {"QOBRIX_a", "QOBRIX_b", "QOBRIX_c"}


def test_an_update_with_nothing_new_skips_every_flow_without_reading_an_input(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bronze skips a folder whose pages are those it listed at its last commit, and a stream reader
    one whose tables' versions are those it read, registering nothing (neither pages nor tables); a
    page landed or retired since is compared with what bronze holds."""
    read: list[str] = []
    for name in ("register_landing", "register_delta", "bind_arrow"):
        registered = getattr(context, name)
        monkeypatch.setattr(
            context, name, lambda con, relation, *a, _f=registered: read.append(relation) or _f(con, relation, *a)
        )
    land(settings, "s1", [prop("a", 1), prop("b", 1)])
    run_update(settings.paths)
    read.clear()

    again = run_update(settings.paths)
    assert read == [] and {f.status for f in again.flows} == {"SKIPPED"}

    land(settings, "s2", [prop("c", 2)])
    third = run_update(settings.paths)
    assert "stream__landing__properties" in read
    assert next(f for f in third.flows if f.dataset == "qobrix_bronze.properties").input_records == 1
    read.clear()
    assert {f.status for f in run_update(settings.paths).flows} == {"SKIPPED"} and read == []

    [retired] = (settings.paths.landing / "properties").glob("*/s1/*.jsonl*")
    retired.unlink()
    after_retiring = run_update(settings.paths)
    assert "stream__landing__properties" in read and {f.status for f in after_retiring.flows} == {"SKIPPED"}
    assert set(gold_prices(settings)) == {"QOBRIX_a", "QOBRIX_b", "QOBRIX_c"}


def test_newer_change_wins_and_a_late_older_event_is_ignored(settings: Settings, scd1_apply: str) -> None:
    land(settings, "s1", [prop("a", 10, price=200_000)])
    run_update(settings.paths)
    land(settings, "s2", [prop("a", 5, price=150_000), prop("b", 1)])
    run_update(settings.paths)
    assert gold_prices(settings) == {"QOBRIX_a": 200_000.0, "QOBRIX_b": 100_000.0}
    land(settings, "s3", [prop("a", 20, price=250_000), prop("a", 15, price=240_000)])
    run_update(settings.paths)
    assert gold_prices(settings)["QOBRIX_a"] == 250_000.0


def test_deletes_remove_rows_unless_older_than_the_row(settings: Settings, scd1_apply: str) -> None:
    land(settings, "s1", [prop("a", 10), prop("b", 10)])
    run_update(settings.paths)
    land(settings, "s2", [prop("a", 11), prop("b", 9)], operation="delete")
    result = run_update(settings.paths)
    silver = next(f for f in result.flows if f.dataset == "qobrix_silver.property")
    assert silver.deleted_records == 1
    assert set(gold_prices(settings)) == {"QOBRIX_b"}


def test_a_local_lookup_value_is_stamped_from_its_rows_and_outlives_updates_changing_no_lookup(
    settings: Settings,
) -> None:
    """Not from the clock: replication would fetch the row again after every update, and every
    update would rewrite the Lookup table."""
    land(
        settings,
        "s1",
        [
            {**prop("a", 5), "city": "Limassol", "country": "cy"},
            {**prop("b", 2), "city": "Limassol", "country": "zz", "state": "zz"},
        ],
    )
    run_update(settings.paths)
    lookup = table(settings, "reso_gold.lookup")
    before, files = rows(settings, "reso_gold.lookup"), lookup.file_uris()
    [local] = [row for row in before if row["LookupKey"] == "City:Limassol"]
    assert local["ModificationTimestamp"] == T0 + timedelta(minutes=2)
    # A carried value RESO lists keeps its standard row alone; one it does not is listed as local.
    countries = {row["LookupKey"]: row for row in before if row["LookupName"] == "Country"}
    assert countries["Country.CY"]["StandardLookupValue"] == "CY" and "Country:CY" not in countries
    assert countries["Country:ZZ"]["ModificationTimestamp"] == T0 + timedelta(minutes=2)
    assert len(countries) == len(reso_lookups()["Country"]) + 1
    # The same value in two fields of a row is listed for each field's lookup.
    [state] = [row for row in before if row["LookupName"] == "StateOrProvince" and row["StandardLookupValue"] is None]
    assert (state["LookupKey"], state["ModificationTimestamp"]) == ("StateOrProvince:ZZ", T0 + timedelta(minutes=2))
    land(settings, "s2", [{**prop("a", 9, price=5), "city": "Limassol", "country": "cy"}])
    result = run_update(settings.paths)
    assert gold_prices(settings)["QOBRIX_a"] == 5.0 and result.published is not None
    assert rows(settings, "reso_gold.lookup") == before
    assert table(settings, "reso_gold.lookup").file_uris() == files


def test_bad_lines_stay_in_bronze_and_land_in_quarantine_with_their_rules(settings: Settings) -> None:
    no_id = {"name": "no id", "property_type": "house", "modified": T0.isoformat()}
    land(settings, "s1", [prop("a", 1), no_id, prop("neg", 1, price=-5)])
    path = next(settings.paths.landing.glob("properties/*/s1/*.jsonl.gz"))
    lines = gzip.decompress(path.read_bytes()) + b'{"entity": "properties", "record": {"id": "cut\n'
    path.write_bytes(gzip.compress(lines))
    result = run_update(settings.paths)

    bronze = rows(settings, "qobrix_bronze.properties")
    assert len(bronze) == 4
    assert [row["payload"] for row in bronze if row["is_malformed"]] == [
        '{"entity": "properties", "record": {"id": "cut'
    ]

    quarantined = {orjson.loads(row["record"])["name"]: row for row in rows(settings, QUARANTINE)}
    assert {name: row["broken_rules"] for name, row in quarantined.items()} == {
        None: [
            "payload_is_json_record",
            "operation_known",
            "id_present",
            "modified_parses",
            "name_present",
            "property_type_present",
        ],
        "no id": ["id_present"],
        "neg": ["prices_not_negative"],
    }
    assert {row["dataset"] for row in quarantined.values()} == {"qobrix_silver.property"}
    assert orjson.loads(quarantined["neg"]["record"])["source_file"] == str(path.relative_to(settings.paths.landing))
    silver = next(f for f in result.flows if f.dataset == "qobrix_silver.property")
    assert (silver.input_records, silver.dropped_records, silver.output_records) == (4, 3, 1)
    assert set(gold_prices(settings)) == {"QOBRIX_a"}


def test_event_log_has_the_databricks_shape(settings: Settings) -> None:
    land(settings, "s1", [prop("a", 1), {"name": "no id"}])
    result = run_update(settings.paths)
    con = duckdb.connect()
    con.register("events", delta_rows(table(settings, EVENT_LOG)))
    kinds = con.execute(
        "SELECT event_type, details FROM events WHERE origin.update_id = ? ORDER BY sequence", [result.update_id]
    ).fetchall()
    assert kinds[0][0] == "create_update"
    states = [orjson.loads(d)["update_progress"]["state"] for kind, d in kinds if kind == "update_progress"]
    assert states == ["RUNNING", "COMPLETED"]
    flow_states = con.execute(
        "SELECT list(json_extract_string(details, '$.flow_progress.status') ORDER BY sequence) FROM events "
        "WHERE origin.update_id = ? AND event_type = 'flow_progress' AND origin.dataset_name = ?",
        [result.update_id, "qobrix_silver.property"],
    ).fetchall()
    assert flow_states == [(["RUNNING", "COMPLETED"],)]
    [quality] = [
        orjson.loads(d)["flow_progress"]["data_quality"]
        for kind, d in kinds
        if kind == "flow_progress" and '"dataset":"qobrix_silver.property"' in d.replace(" ", "")
    ]
    assert quality["dropped_records"] == 1
    id_rule = next(e for e in quality["expectations"] if e["name"] == "id_present")
    assert id_rule == {
        "name": "id_present",
        "dataset": "qobrix_silver.property",
        "passed_records": 1,
        "failed_records": 1,
    }


def test_a_failed_update_publishes_nothing_and_a_rerun_converges(settings: Settings) -> None:
    land(settings, "s1", [prop("a", 1)])
    run_update(settings.paths)
    published = settings.paths.snapshot_pointer.read_bytes()
    land(settings, "s2", [prop("b", 2, price=-1)])
    strict = [
        d
        if d.name != "qobrix_silver.property"
        else Dataset(
            **{**d.__dict__, "expectations": (Expectation("price_ok", "list_selling_price_amount >= 0", "fail"),)}
        )
        for d in load_graph().ordered()
    ]
    # The error names the rule, its constraint and how many rows broke it.
    with pytest.raises(UpdateFailed, match=r"'price_ok' \(list_selling_price_amount >= 0\) failed on 1 row"):
        run_update(settings.paths, graph=build_graph(strict))
    assert settings.paths.snapshot_pointer.read_bytes() == published
    result = run_update(settings.paths)
    assert result.state == "COMPLETED" and set(gold_prices(settings)) == {"QOBRIX_a"}


def test_a_second_update_is_refused_while_one_runs(settings: Settings) -> None:
    with UpdateLock(settings.paths, "update holder"), pytest.raises(PipelineBusy, match=r"busy \(update holder"):
        run_update(settings.paths)


def test_full_refresh_rebuilds_from_all_landed_files(settings: Settings) -> None:
    land(settings, "s1", [prop("a", 1), prop("b", 1)])
    run_update(settings.paths)
    result = run_update(settings.paths, full_refresh=True)
    assert statuses(result) == ["COMPLETED"] * 3
    assert len(rows(settings, "qobrix_bronze.properties")) == 2
    assert set(gold_prices(settings)) == {"QOBRIX_a", "QOBRIX_b"}


def test_refresh_selection_updates_only_the_named_datasets(settings: Settings) -> None:
    land(settings, "s1", [prop("a", 1)])
    run_update(settings.paths)
    land(settings, "s2", [prop("b", 1)])
    result = run_update(settings.paths, refresh=["qobrix_bronze.properties"])
    assert [f.dataset for f in result.flows] == ["qobrix_bronze.properties"]
    assert set(gold_prices(settings)) == {"QOBRIX_a"}
    run_update(settings.paths)
    assert set(gold_prices(settings)) == {"QOBRIX_a", "QOBRIX_b"}


def served_snapshot(settings: Settings) -> tuple[dict, duckdb.DuckDBPyConnection]:
    """The pointer as it is now, and a reader of the snapshot it names."""
    pointer = orjson.loads(settings.paths.snapshot_pointer.read_bytes())
    return pointer, open_snapshot(settings.paths.snapshots, pointer)


def test_serving_keeps_answering_from_the_old_snapshot_during_an_update(settings: Settings) -> None:
    land(settings, "s1", [prop("a", 1)])
    run_update(settings.paths)
    pointer, reader = served_snapshot(settings)
    land(settings, "s2", [prop("b", 1)])
    worker = threading.Thread(target=run_update, args=(settings.paths,))
    worker.start()
    deadline = time.monotonic() + 120
    while worker.is_alive():
        assert reader.execute("SELECT count(*) FROM property").fetchall() == [(1,)]
        assert time.monotonic() < deadline, "the update has not ended in 120 s"
    worker.join()
    newer, newer_reader = served_snapshot(settings)
    assert newer["files"]["property"] != pointer["files"]["property"]
    assert newer_reader.execute("SELECT count(*) FROM property").fetchall() == [(2,)]


def test_a_record_by_key_stays_whole_and_never_goes_back_while_updates_patch_its_files(settings: Settings) -> None:
    """Key lookups through the places index, in a thread, while five updates patch Property: the
    served file's copy first, then standbys in place. Every lookup finds the record whole, at the
    price of a published update, never older than the one before."""
    land(settings, "s1", [prop("a", 1, price=100_001)])
    run_update(settings.paths)
    backend = SnapshotBackend(settings.paths.snapshot_pointer)
    query = parse_query({}, entity_set("Property"))
    prices, failures, done = [], [], threading.Event()

    def look_up() -> None:
        while not done.is_set():
            try:
                prices.append(orjson.loads(read_entity(backend, query, "QOBRIX_a").json)["ListPrice"])
            except Exception as error:  # any failure is the finding
                failures.append(error)
            time.sleep(0.002)  # a reader among others, not one holding the interpreter from the updates

    reader = threading.Thread(target=look_up)
    reader.start()
    try:
        for update in range(2, 7):
            land(settings, f"s{update}", [prop("a", update, price=100_000 + update)])
            run_update(settings.paths)
    finally:
        done.set()
        reader.join()
    assert backend.documents_by_key(query.entity) is not None, "read through the places index"
    assert not failures and len(prices) > 5, len(prices)
    assert prices == sorted(prices) and set(prices) <= {100_000 + update for update in range(1, 7)}
    assert orjson.loads(read_entity(backend, query, "QOBRIX_a").json)["ListPrice"] == 100_006


def test_a_lookup_in_use_keeps_its_snapshot_from_being_patched_in_place(settings: Settings) -> None:
    """A key lookup handed out on one snapshot reads it whole even after the backend has moved to a
    newer one and another update has run: the lookup holds the snapshot's connection, so the file
    stays attached and the next publish copies rather than patches it."""
    land(settings, "s1", [prop("a", 1, price=100_001)])
    run_update(settings.paths)
    backend = SnapshotBackend(settings.paths.snapshot_pointer)
    query = parse_query({}, entity_set("Property"))
    lookup = backend.documents_by_key(query.entity)
    assert lookup is not None
    for update in (2, 3):
        land(settings, f"s{update}", [prop("a", update, price=100_000 + update)])
        run_update(settings.paths)
        assert orjson.loads(read_entity(backend, query, "QOBRIX_a").json)["ListPrice"] == 100_000 + update
    document = lookup("QOBRIX_a")
    assert document is not None and orjson.loads(document)["ListPrice"] == 100_001


def by_key(outcome: str) -> tuple[int, int]:
    """(rows removed, rows written) of a publish outcome saying a table was patched by key."""
    matched = re.fullmatch(r"patched by key since gold version \d+: (\d+) rows removed, (\d+) written", outcome)
    assert matched, outcome
    return int(matched[1]), int(matched[2])


def test_a_changed_table_is_patched_in_place_in_the_file_named_before_once_no_reader_holds_it(
    settings: Settings,
) -> None:
    """From the third publish on, a changed table is patched in place in the file the pointer named
    before: two files per table. The served file is copied instead at the second publish, and when
    a reader still holds the file named before (here one opened before the fifth publish, still open
    at the sixth); that reader keeps seeing its rows."""
    snapshots = settings.paths.snapshots
    readers: list[duckdb.DuckDBPyConnection] = []
    outcomes, in_place, databases = [], [], []
    for update in range(1, 7):
        land(settings, f"s{update}", [prop(f"k{update}", update)])
        before = orjson.loads(settings.paths.snapshot_pointer.read_bytes()) if update > 1 else {}
        named_before = before.get("previous_files", {}).get("property")
        inode_before = (snapshots / named_before).stat().st_ino if named_before else None
        run_update(settings.paths)
        pointer, reader = served_snapshot(settings)
        outcomes.append(pointer["tables"]["property"])
        in_place.append((snapshots / pointer["files"]["property"]).stat().st_ino == inode_before)
        databases.append(len(list((snapshots / "property").glob("*.duckdb"))))
        for held in readers:
            assert held.execute("SELECT count(*) FROM property").fetchall() == [(4,)], "the held reader's rows"
        if update != 5:
            for held in readers:
                held.close()
            readers = []
        if update == 4:
            readers.append(reader)
    assert outcomes[0] == "built"
    assert [by_key(outcome) for outcome in outcomes[1:]] == [(0, 1), (0, 2), (0, 2), (0, 2), (0, 1)]
    assert in_place == [False, False, True, True, True, False]
    assert databases == [1, 2, 2, 2, 2, 3]
    files = sorted(path.name for path in (snapshots / "property").iterdir())
    names = [name for name in files if name.endswith(".duckdb")]
    assert files == sorted([*names, *(f"{name}{kind}" for name in names for kind in (".documents", ".places"))])


HOLDING_READER = """
import sys, duckdb
con = duckdb.connect()
con.execute("ATTACH ? AS held (READ_ONLY)", [sys.argv[1]])
print("attached", flush=True)
sys.stdin.readline()
print(con.execute("SELECT count(*) FROM held.property").fetchone()[0], flush=True)
"""


def test_a_file_another_process_holds_is_not_patched_in_place(settings: Settings) -> None:
    """An API process that has served nothing since before the last publish still has the file named
    before attached (DuckDB's file lock): the served file is copied instead, and that process keeps
    reading its rows."""
    for update in range(1, 3):
        land(settings, f"s{update}", [prop(f"k{update}", update)])
        run_update(settings.paths)
    pointer = orjson.loads(settings.paths.snapshot_pointer.read_bytes())
    held = settings.paths.snapshots / pointer["previous_files"]["property"]
    reader = subprocess.Popen(
        [sys.executable, "-c", HOLDING_READER, str(held)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "attached"
        land(settings, "s3", [prop("k3", 3)])
        run_update(settings.paths)
        newer, _ = served_snapshot(settings)
        assert by_key(newer["tables"]["property"]) == (0, 1), "patched from the served file's copy"
        assert held.exists(), "the held file left where its reader found it"
        assert (settings.paths.snapshots / newer["files"]["property"]).stat().st_ino != held.stat().st_ino
        answer, _ = reader.communicate("go\n", timeout=60)
        assert answer.strip() == "1", "the held file's rows, as they were"
    finally:
        reader.kill()


def photo(media_id: str) -> dict:
    file = {"href": f"https://files.example/{media_id}.jpg", "mime_type": "image/jpeg"}
    return {"id": media_id, "category": {"name": "photos"}, "related_model": "Properties", "file": file}


def test_a_view_recomputed_to_the_same_rows_is_not_rewritten_and_its_readers_skip(settings: Settings) -> None:
    land(
        settings,
        "s1",
        [{**prop("a", 1), "media": [photo("m1"), photo("m2")]}, {**prop("b", 1), "media": [photo("m3")]}],
    )
    run_update(settings.paths)
    lakehouse = Lakehouse(settings.paths.lakehouse)
    media_files = lakehouse.fingerprint("qobrix_silver.media")
    assert len(rows(settings, "reso_gold.media")) == 3
    land(settings, "s2", [{**prop("a", 2, price=300_000), "media": [photo("m1"), photo("m2")]}])
    result = run_update(settings.paths)
    by_name = {flow.dataset: flow.status for flow in result.flows}
    assert by_name["qobrix_silver.media"] == "COMPLETED" and by_name["reso_gold.media"] == "SKIPPED"
    assert lakehouse.fingerprint("qobrix_silver.media") == media_files
    assert gold_prices(settings)["QOBRIX_a"] == 300_000


def test_a_view_is_compared_with_the_digest_its_last_commit_recorded_not_read_back(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading a view's rows back to compare them cost a second of every update at 100,000 listings."""
    land(
        settings,
        "s1",
        [{**prop("a", 1), "media": [photo("m1"), photo("m2")]}, {**prop("b", 1), "media": [photo("m3")]}],
    )
    run_update(settings.paths)
    land(settings, "s2", [{**prop("a", 2, price=200_000), "media": [photo("m1"), photo("m2")]}])
    run_update(settings.paths)
    digested: list[str] = []
    digest = context.UpdateContext.rows_digest
    monkeypatch.setattr(
        context.UpdateContext, "rows_digest", lambda self, rows: digested.append(rows) or digest(self, rows)
    )

    land(settings, "s3", [{**prop("a", 3, price=300_000), "media": [photo("m1"), photo("m2")]}])
    by_name = {flow.dataset: flow.status for flow in run_update(settings.paths).flows}
    assert by_name["qobrix_silver.media"] == "COMPLETED" and by_name["reso_gold.media"] == "SKIPPED"
    assert digested and "current_rows" not in digested
    digested.clear()
    land(settings, "s4", [{**prop("a", 4, price=400_000), "media": [photo("m1")]}])
    run_update(settings.paths)
    # Gold property's rows replaced by key: its new digest comes from the one its last commit recorded
    # and the replaced and added rows', not from reading all its rows (staged) again.
    assert "refreshed__reso_gold__property" in digested and "staged__reso_gold__property" not in digested
    assert sorted(row["MediaKey"] for row in rows(settings, "reso_gold.media")) == [
        "QOBRIX_MEDIA_m1",
        "QOBRIX_MEDIA_m3",
    ]
    assert gold_prices(settings)["QOBRIX_a"] == 400_000


def served(settings: Settings, pointer: dict, con: duckdb.DuckDBPyConnection, table_name: str) -> list[tuple]:
    """Every row of a served table as stored, its document read from the documents file in place of
    where it lies there (which differs between a patched file and a fresh one)."""
    documents = open_documents(con, settings.paths.snapshots, pointer)
    rows = con.execute(
        f'SELECT * EXCLUDE ("__hash", "__document_at", "__document_size"), "__document_at", "__document_size" '
        f'FROM "{table_name}"'
    ).fetchall()
    return sorted(((*row[:-2], documents.read(table_name, *row[-2:])) for row in rows), key=str)


def test_publishing_patches_the_served_snapshot_to_what_a_fresh_build_gives(settings: Settings) -> None:
    # Listings with media, enough of them that an update's changes are merged on read into gold.
    listings = [{**prop(key, 1), "media": [photo(f"{key}1"), photo(f"{key}2")]} for key in "abcefghijk"]
    land(settings, "s1", listings)
    run_update(settings.paths)
    land(settings, "s2", [{**prop("a", 2, price=250_000), "media": [photo("a2"), photo("a3")]}, prop("d", 2)])
    land(settings, "s3", [prop("b", 3)], operation="delete")
    run_update(settings.paths)
    pointer, patched = served_snapshot(settings)
    assert by_key(pointer["tables"]["property"]) == (2, 2)
    assert by_key(pointer["tables"]["media"])[0] > 0
    assert pointer["tables"]["member"] == "unchanged"
    assert pointer["started_at"] < pointer["published_at"] and publishing_seconds(pointer) > 0
    assert publishing_seconds({k: v for k, v in pointer.items() if k != "started_at"}) == 0, "a pointer of before"
    patched_rows = {table_name: served(settings, pointer, patched, table_name) for table_name in pointer["tables"]}

    run_update(settings.paths, full_refresh=True)
    settings.paths.snapshot_pointer.unlink()
    run_update(settings.paths, full_refresh=True)
    fresh_pointer, fresh = served_snapshot(settings)
    assert set(fresh_pointer["tables"].values()) == {"built"}
    for table_name in fresh_pointer["tables"]:
        assert patched_rows[table_name] == served(settings, fresh_pointer, fresh, table_name), table_name
    keys = [row[0] for row in patched.execute('SELECT "ListingKey" FROM property ORDER BY 1').fetchall()]
    assert keys == [f"QOBRIX_{key}" for key in "acdefghijk"]


def test_a_served_file_holding_gold_rows_already_is_kept_not_copied_and_patched_later_from_its_version(
    settings: Settings,
) -> None:
    """A price change refreshes gold Media by key (its rows follow the listing's) and, merged on read,
    commits the rows it recomputed though they are the ones it had. Only a copy of the served file
    could be patched (no standby yet), and the served file holds those rows already: it is kept, not
    copied, and the pointer records the gold version its rows were found equal to, from which the
    next check and the next patch start. A photo removed is a change: patched by key from that
    version, to what a fresh build gives."""
    listings = [{**prop(key, 1), "media": [photo(f"{key}1"), photo(f"{key}2")]} for key in "abcefghijk"]
    land(settings, "s1", listings)
    run_update(settings.paths)
    first, _ = served_snapshot(settings)
    kept_versions = []
    for update in (2, 3):
        land(
            settings, f"s{update}", [{**prop("a", update, price=100_000 * update), "media": [photo("a1"), photo("a2")]}]
        )
        result = run_update(settings.paths)
        kept, _ = served_snapshot(settings)
        assert {flow.dataset: flow.status for flow in result.flows}["reso_gold.media"] == "COMPLETED"
        assert kept["tables"]["media"] == publish.KEPT and kept["files"]["media"] == first["files"]["media"]
        assert kept["verified_versions"]["media"] == kept["versions"]["reso_gold.media"]
        kept_versions.append(kept["versions"]["reso_gold.media"])
    assert kept_versions[0] < kept_versions[1] and len(list((settings.paths.snapshots / "media").glob("*.duckdb"))) == 1
    land(settings, "s3b", [prop("z", 3)])  # a listing with no photos: Media's files stay as they are
    run_update(settings.paths)
    unchanged, _ = served_snapshot(settings)
    assert unchanged["tables"]["media"] == "unchanged" and unchanged["verified_versions"]["media"] == kept_versions[1]

    land(settings, "s4", [{**prop("a", 4, price=400_000), "media": [photo("a1")]}])
    run_update(settings.paths)
    pointer, patched = served_snapshot(settings)
    assert by_key(pointer["tables"]["media"])[0] >= 1, "a photo removed"
    assert pointer["tables"]["media"].startswith(f"patched by key since gold version {kept_versions[1]}:")
    assert "media" not in pointer["verified_versions"]
    patched_media = served(settings, pointer, patched, "media")
    run_update(settings.paths, full_refresh=True)
    settings.paths.snapshot_pointer.unlink()
    run_update(settings.paths, full_refresh=True)
    fresh_pointer, fresh = served_snapshot(settings)
    assert patched_media == served(settings, fresh_pointer, fresh, "media")


def test_a_patch_compares_only_the_keys_gold_changed_since_the_version_its_file_records(settings: Settings) -> None:
    """The served file records the gold version it reflects; the next patch reads gold's log for the keys
    changed since and compares only those rows (a served row of another key is not looked at, even
    one whose hash no longer matches). A file that records no version is compared row by row."""

    def served_file(which: str = "files") -> Path:
        pointer = orjson.loads(settings.paths.snapshot_pointer.read_bytes())
        return settings.paths.snapshots / pointer[which]["property"]

    # Enough listings that changing one is merged on read (a large share rewrites the tables whole,
    # and then every key is among the changed).
    land(settings, "s1", [prop(key, 1) for key in "abcdefgh"])
    run_update(settings.paths)
    with duckdb.connect(str(served_file())) as file:
        file.execute(f'UPDATE property SET "{publish.HASH_COLUMN}" = 0 WHERE "ListingKey" = \'QOBRIX_c\'')
    land(settings, "s2", [prop("a", 2, price=200_000)])
    assert by_key(run_update(settings.paths).published["tables"]["property"]) == (1, 1)
    with duckdb.connect(str(served_file())) as file:
        assert file.execute(
            f'SELECT "{publish.HASH_COLUMN}" FROM property WHERE "ListingKey" = \'QOBRIX_c\''
        ).fetchall() == [(0,)]
    # The file the next update patches in place: the one named before, from before a's change.
    with duckdb.connect(str(served_file("previous_files"))) as file:
        file.execute(f'DROP TABLE "{publish.SOURCE_VERSION_TABLE}"')
    land(settings, "s3", [prop("b", 3, price=300_000)])
    result = run_update(settings.paths)
    assert result.published["tables"]["property"] == "patched: 3 rows removed, 3 written", "a, b, c's stale hash"
    _, reader = served_snapshot(settings)
    prices = reader.execute('SELECT "ListingKey", "ListPrice" FROM property ORDER BY 1 LIMIT 3').fetchall()
    assert [(key, float(price)) for key, price in prices] == [
        ("QOBRIX_a", 200_000),
        ("QOBRIX_b", 300_000),
        ("QOBRIX_c", 100_000),
    ]


def served_document(reader: duckdb.DuckDBPyConnection, documents: DocumentFiles) -> dict:
    """The one property row's document, read through a snapshot's reader and its documents."""
    [(at, size)] = reader.execute('SELECT "__document_at", "__document_size" FROM property').fetchall()
    return orjson.loads(documents.read("property", at, size))


def test_a_documents_file_is_shared_by_link_and_written_anew_once_mostly_dead(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A patch appends the documents of the rows it writes to a link of the served documents file;
    readers of the served snapshot keep reading theirs. A file more than half dead is written anew."""
    monkeypatch.setattr(publish, "DEAD_DOCUMENTS_MIN_BYTES", 0)
    land(settings, "s1", [prop("a", 1, price=100_000)])
    run_update(settings.paths)
    first, first_reader = served_snapshot(settings)
    [(first_at, first_size)] = first_reader.execute(
        'SELECT "__document_at", "__document_size" FROM property'
    ).fetchall()
    first_documents = open_documents(first_reader, settings.paths.snapshots, first)
    first_reader.close()
    first_document = first_documents.read("property", first_at, first_size)
    assert orjson.loads(first_document)["ListPrice"] == 100_000
    first_file = documents_of(settings.paths.snapshots / first["files"]["property"])
    outcomes = []
    for update in range(2, 8):
        land(settings, f"s{update}", [prop("a", update, price=100_000 + update)])
        run_update(settings.paths)
        pointer, reader = served_snapshot(settings)
        outcomes.append(pointer["tables"]["property"])
        documents = open_documents(reader, settings.paths.snapshots, pointer)
        assert served_document(reader, documents)["ListPrice"] == 100_000 + update
        served_file = documents_of(settings.paths.snapshots / pointer["files"]["property"])
        if update == 2:
            assert served_file.stat().st_ino == first_file.stat().st_ino
        [(size,)] = reader.execute('SELECT "__document_size" FROM property').fetchall()
        assert served_file.stat().st_size <= 3 * size
    assert by_key(outcomes[0]) == (1, 1) and "built" in outcomes
    assert first_documents.read("property", first_at, first_size) == first_document, "appended to, then unlinked"


def test_rows_an_interrupted_patch_left_without_documents_get_them_from_the_next_patch(tmp_path: Path) -> None:
    """A patch writes its rows, then their documents: one killed in between leaves rows that the
    next patch of that file finds already there."""
    path = tmp_path / "table.duckdb"
    with duckdb.connect() as con, publish.serving_storage(con), publish.snapshot_database(path, con):
        con.execute("CREATE TEMP TABLE source AS SELECT 'k1' AS id, 1 AS v")
        publish.create_serving_table(con, "t", "source", path, "id")
        con.execute("INSERT INTO source VALUES ('k2', 2)")
        con.execute("INSERT INTO t BY NAME SELECT *, hash(s) AS __hash FROM (SELECT * FROM source WHERE id = 'k2') s")
        assert publish.patch_serving_table(con, "t", "source", path, "id") == (0, 0)
        placed = con.execute('SELECT "__document_at", "__document_size" FROM t ORDER BY id').fetchall()
    documents = file_documents(path, "t")
    assert [orjson.loads(documents.read("t", *place)) for place in placed] == [
        {"id": "k1", "v": 1},
        {"id": "k2", "v": 2},
    ]


def test_serving_files_keep_row_groups_small_enough_for_recent_first_pages_to_skip_most(tmp_path: Path) -> None:
    """A top-N page in modification order reads only the row groups that may hold its rows: at
    DuckDB's default size a table of 100,000 listings is one row group, read whole for every page."""
    path = tmp_path / "table.duckdb"
    rows = 3 * publish.SERVING_ROW_GROUP_SIZE
    with duckdb.connect() as con, publish.serving_storage(con), publish.snapshot_database(path, con):
        con.execute(f"CREATE TEMP TABLE source AS SELECT 'k' || i AS id, i AS v FROM range({rows}) r(i)")
        publish.create_serving_table(con, "t", "source", path, "id")
    with duckdb.connect(str(path), read_only=True) as served:
        [(groups, largest)] = served.execute(
            "SELECT count(*), max(count) FROM (SELECT row_group_id, max(count) AS count "
            "FROM pragma_storage_info('t') GROUP BY row_group_id)"
        ).fetchall()
    assert groups >= 3 and largest <= publish.SERVING_ROW_GROUP_SIZE


def file_documents(path: Path, table: str) -> DocumentFiles:
    """The documents of a serving file's `table`, read as the API reads them."""
    with duckdb.connect(str(path), read_only=True) as con:
        return DocumentFiles({table: (documents_of(path), read_blocks(con))})


def served_runs(path: Path, table: str, column: str) -> dict[str, list]:
    """Each run in a serving file's places index, as the records of the JSON array it holds."""
    documents = file_documents(path, table)
    index = places.DocumentPlaces({table: places.places_of(path)})
    assert index.runs_column(table) == column
    with closing(sqlite3.connect(places.places_of(path))) as connection:
        values = [row[0] for row in connection.execute("SELECT value FROM runs").fetchall()]
    runs = index.runs(table, values)
    return {value: orjson.loads(b"[" + documents.read(table, at, size) + b"]") for value, at, size in runs}


def source_runs(con: duckdb.DuckDBPyConnection) -> dict[str, list]:
    runs: dict[str, list] = {}
    for key, parent, value in con.execute("SELECT * FROM source WHERE parent IS NOT NULL ORDER BY id").fetchall():
        runs.setdefault(parent, []).append({"id": key, "parent": parent, "v": value})
    return runs


def test_a_serving_tables_strings_are_stored_compressed(tmp_path: Path) -> None:
    """Rows are read whole from the documents file: the table's own string columns are only filtered,
    sorted and scanned, and are stored compressed (they were kept plain while rows were read from them)."""
    path = tmp_path / "media.duckdb"
    with duckdb.connect() as con:
        con.execute(
            "CREATE TEMP TABLE source AS SELECT 'm' || i AS id, 'https://files.example/listing/' || (i % 50) "
            "|| '/photo-' || i || '.jpg' AS url, repeat('a long caption ', 40) || (i % 7) AS caption "
            "FROM range(50000) r(i)"
        )
        with publish.serving_storage(con), publish.snapshot_database(path, con):
            publish.create_serving_table(con, "media", "source", path, "id")
    with duckdb.connect(str(path), read_only=True) as served_file:
        used = {
            row[0]
            for row in served_file.execute(
                "SELECT DISTINCT compression FROM pragma_storage_info('media') WHERE segment_type = 'VARCHAR'"
            ).fetchall()
        }
    assert used and used <= {"FSST", "Dictionary", "DICT_FSST", "Constant"}, used


@pytest.mark.parametrize("compared", ["every row", "the changed keys"])
def test_documents_of_rows_sharing_an_expanded_column_lie_as_one_run_in_key_order_through_patches(
    tmp_path: Path, compared: str
) -> None:
    """What a plain `$expand` reads: each parent's rows as one slice of the documents file. Built on a
    connection that reorders rows to save memory, as the engine's does, over several row groups. A
    patch given the changed keys writes again the whole runs they touch, as one comparing every row,
    without reading the source whole."""
    path = tmp_path / "media.duckdb"
    with duckdb.connect(config={"preserve_insertion_order": False}) as con:
        con.execute(
            "CREATE TEMP TABLE source AS SELECT 'm' || i AS id, CASE WHEN i % 1000 <> 999 THEN 'p' || (i % 997) END "
            f"AS parent, i AS v FROM range({2 * publish.SERVING_ROW_GROUP_SIZE}) r(i)"
        )
        with publish.serving_storage(con), publish.snapshot_database(path, con):
            publish.create_serving_table(con, "media", "source", path, "id", ["parent"])
        built = served_runs(path, "media", "parent")
        assert built == source_runs(con) and len(built) == 997
        touched = "parent IN ('p0', 'p3', 'p5', 'p7', 'p8', 'p9', 'p-new')"
        [(before,)] = con.execute(f"SELECT count(*) FROM source WHERE {touched}").fetchall()
        con.execute("UPDATE source SET v = -1 WHERE id = 'm7'")
        con.execute("DELETE FROM source WHERE id = 'm8' OR parent = 'p5'")
        con.execute("UPDATE source SET parent = 'p3' WHERE id = 'm9'")
        con.execute("INSERT INTO source VALUES ('m-new', 'p-new', 1), ('m0-new', 'p0', 2)")
        con.execute(
            "CREATE TEMP TABLE changed AS SELECT unnest(['m7', 'm8', 'm9', 'm-new', 'm0-new']) AS id "
            f"UNION SELECT 'm' || i FROM range(5, {2 * publish.SERVING_ROW_GROUP_SIZE}, 997) r(i)"
        )
        # The changed keys' current rows alone: the rest of each run they touch comes from the served
        # file, and the source is not read at all (the guard fails a read of any row).
        # Files written since hold other keys' rows too (here those of p7, a run a change touched).
        con.execute(
            "CREATE TEMP VIEW written_since AS SELECT * FROM source WHERE id IN (SELECT id FROM changed) "
            "OR parent = 'p7'"
        )
        con.execute(
            "CREATE TEMP VIEW guarded AS SELECT * FROM source "
            "WHERE CASE WHEN id IS NOT NULL THEN error('the source read whole') END IS NULL"
        )
        changes = None if compared == "every row" else publish.Changes("changed", "written_since")
        source = "source" if changes is None else "guarded"
        with publish.serving_storage(con), publish.snapshot_database(path, con):
            removed, written = publish.patch_serving_table(con, "media", source, path, "id", ["parent"], changes)
        patched = served_runs(path, "media", "parent")
        assert patched == source_runs(con) and "p5" not in patched and "p-new" in patched
        [(after,)] = con.execute(f"SELECT count(*) FROM source WHERE {touched}").fetchall()
        assert (removed, written) == (before, after), "every row of each run a change touched, written again"
        [(preserving,)] = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()
    assert preserving is False


def places_rows(path: Path) -> list[tuple]:
    with closing(sqlite3.connect(places.places_of(path))) as connection:
        return connection.execute("SELECT key, at, size FROM places ORDER BY key").fetchall()


def served_places(path: Path, table: str, key: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as served:
        return served.execute(
            f'SELECT "{key}", "__document_at", "__document_size" FROM "{table}" ORDER BY 1'
        ).fetchall()


def test_the_places_index_follows_patches_in_place_and_is_written_anew_when_behind_its_file(
    tmp_path: Path,
) -> None:
    """A patch brings the SQLite places index to the rows it wrote and removed, and the runs it
    touched, in place (same file); an index left behind its file (a publish stopped between the
    two) is written anew, not patched."""
    path = tmp_path / "media.duckdb"
    index = places.places_of(path)
    with duckdb.connect() as con:
        con.execute(
            "CREATE TEMP TABLE source AS SELECT 'm' || i AS id, 'p' || (i % 97) AS parent, i AS v FROM range(5000) r(i)"
        )

        def publish_source() -> tuple[int, int] | None:
            with publish.serving_storage(con), publish.snapshot_database(path, con):
                patched = publish.patch_serving_table(con, "media", "source", path, "id", ["parent"])
                if patched is None:
                    publish.create_serving_table(con, "media", "source", path, "id", ["parent"])
                return patched

        assert publish_source() is None
        assert places_rows(path) == served_places(path, "media", "id") and len(places_rows(path)) == 5000
        built = index.stat().st_ino
        behind = tmp_path / "behind.places"
        shutil.copyfile(index, behind)

        con.execute("UPDATE source SET v = -1 WHERE id IN ('m7', 'm4000')")
        con.execute("DELETE FROM source WHERE id = 'm8' OR parent = 'p5'")
        con.execute("INSERT INTO source VALUES ('m-new', 'p-new', 1)")
        assert publish_source() is not None
        rows = served_places(path, "media", "id")
        assert places_rows(path) == rows and index.stat().st_ino == built, "patched in place"
        assert {"m-new"} <= {row[0] for row in rows} and not {"m8", "m5"} & {row[0] for row in rows}
        assert served_runs(path, "media", "parent") == source_runs(con)

        shutil.copyfile(behind, index)
        con.execute("UPDATE source SET v = -2 WHERE id = 'm9'")
        assert publish_source() is not None
        assert places_rows(path) == served_places(path, "media", "id") and index.stat().st_ino != built
        assert served_runs(path, "media", "parent") == source_runs(con)
        assert not any(path.exists() for path in places.index_files(index)[1:])


def test_a_rebuild_stopped_before_its_places_index_leaves_no_index_that_looks_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file built anew (its documents file rewritten) and killed before writing its places index:
    the old index, at the generation the file still recorded, would be patched and point every
    unchanged row into the old documents."""
    path = tmp_path / "media.duckdb"
    with duckdb.connect() as con:
        con.execute(
            "CREATE TEMP TABLE source AS SELECT 'm' || i AS id, 'p' || (i % 7) AS parent, i AS v FROM range(100) r(i)"
        )

        def build() -> None:
            with publish.serving_storage(con), publish.snapshot_database(path, con):
                con.execute('DROP TABLE IF EXISTS "media"')
                publish.create_serving_table(con, "media", "source", path, "id", ["parent"])

        build()
        con.execute("UPDATE source SET v = -v WHERE id > 'm5'")

        def killed(*args: object) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(publish, "_write_places", killed)
        with pytest.raises(KeyboardInterrupt):
            build()
        monkeypatch.undo()
        con.execute("UPDATE source SET v = 1000 WHERE id = 'm0'")
        with publish.serving_storage(con), publish.snapshot_database(path, con):
            patched = publish.patch_serving_table(con, "media", "source", path, "id", ["parent"])
        if patched is None:
            build()
        assert places_rows(path) == served_places(path, "media", "id")
        assert served_runs(path, "media", "parent") == source_runs(con)


@pytest.mark.parametrize("companion", [documents_of, places.places_of], ids=["documents", "places"])
def test_a_served_file_without_its_documents_or_places_is_built_anew_though_gold_did_not_change(
    settings: Settings, companion
) -> None:
    """What a snapshot published before documents (or places) had files of their own looks like to
    an update."""
    land(settings, "s1", [prop("a", 1)])
    run_update(settings.paths)
    pointer, _ = served_snapshot(settings)
    companion(settings.paths.snapshots / pointer["files"]["property"]).unlink()
    result = run_update(settings.paths)
    assert result.published["tables"]["property"] == "built"
    assert result.published["tables"]["member"] == "unchanged"
    newer, reader = served_snapshot(settings)
    assert served_document(reader, open_documents(reader, settings.paths.snapshots, newer))["ListingKey"] == "QOBRIX_a"


@pytest.mark.parametrize("unfit", ["no key index", "no places index", "damaged"])
def test_a_standby_left_unfit_is_passed_over_for_a_copy_of_the_served_file(settings: Settings, unfit: str) -> None:
    """What a publish that failed between creating a table and indexing it leaves behind, a file of
    the layout before places indexes, or one damaged: a standby (the file the pointer named before)
    that cannot be patched. The served file is copied and patched instead of the table being built
    anew, and the unfit file is gone."""
    for update in range(1, 4):
        land(settings, f"s{update}", [prop(f"k{update}", update)])
        run_update(settings.paths)
    pointer = orjson.loads(settings.paths.snapshot_pointer.read_bytes())
    standby = settings.paths.snapshots / pointer["previous_files"]["property"]
    if unfit == "no key index":
        with duckdb.connect(str(standby)) as broken:
            broken.execute("DROP INDEX property_key")
            broken.execute("INSERT INTO property SELECT * FROM property")
    elif unfit == "damaged":
        standby.write_bytes(b"not a duckdb file" * 1000)
    else:
        places.places_of(standby).unlink()
    land(settings, "s4", [prop("k4", 4)])
    run_update(settings.paths)
    newer, reader = served_snapshot(settings)
    assert by_key(newer["tables"]["property"]) == (0, 1)
    assert not standby.exists() and len(list(standby.parent.glob("*.duckdb"))) == 2
    keys = [row[0] for row in reader.execute('SELECT "ListingKey" FROM property ORDER BY 1').fetchall()]
    assert keys == ["QOBRIX_k1", "QOBRIX_k2", "QOBRIX_k3", "QOBRIX_k4"]
    indexes = reader.execute("SELECT index_name FROM duckdb_indexes() WHERE table_name = 'property'").fetchall()
    assert ("property_key",) in indexes


def test_a_damaged_served_snapshot_is_rebuilt_rather_than_patched(settings: Settings) -> None:
    land(settings, "s1", [prop("a", 1)])
    run_update(settings.paths)
    pointer = orjson.loads(settings.paths.snapshot_pointer.read_bytes())
    (settings.paths.snapshots / pointer["files"]["property"]).write_bytes(b"not a duckdb file" * 1000)
    land(settings, "s2", [prop("b", 2)])
    run_update(settings.paths)
    newer, reader = served_snapshot(settings)
    assert newer["tables"]["property"] == "built" and newer["tables"]["member"] == "unchanged"
    served_keys = reader.execute('SELECT "ListingKey" FROM property ORDER BY 1')
    assert [row[0] for row in served_keys.fetchall()] == ["QOBRIX_a", "QOBRIX_b"]


def test_a_served_snapshot_missing_its_table_is_rebuilt_rather_than_compared(settings: Settings) -> None:
    """A served file that attaches but lacks its table (it records a gold version) cannot be compared
    with gold before a copy of it is patched: the publish goes on, and builds the table anew."""
    land(settings, "s1", [prop(key, 1) for key in "acdefghijk"])
    run_update(settings.paths)
    pointer = orjson.loads(settings.paths.snapshot_pointer.read_bytes())
    with duckdb.connect(str(settings.paths.snapshots / pointer["files"]["property"])) as served_file:
        served_file.execute("DROP TABLE property")
    land(settings, "s2", [prop("b", 2)])
    run_update(settings.paths)
    newer, reader = served_snapshot(settings)
    assert newer["tables"]["property"] == "built"
    assert len(reader.execute('SELECT "ListingKey" FROM property').fetchall()) == 11


def test_keys_held_once_each_pass_the_unique_rule_with_no_failure(settings: Settings) -> None:
    land(settings, "s1", [prop("a", 1), prop("b", 1)])
    result = run_update(settings.paths)
    quality = data_quality(settings, result.update_id, "reso_gold.property")
    [unique] = [rule for rule in quality["expectations"] if rule["name"] == "ListingKey_unique"]
    assert (unique["passed_records"], unique["failed_records"]) == (2, 0)


def test_a_table_that_fails_to_publish_moves_no_pointer_and_a_rerun_converges(settings: Settings) -> None:
    """Tables are built two at a time: the failure of one (here its folder is taken by a file) lets
    the other builds finish, publishes none of them, and the next update publishes them all."""
    land(settings, "s1", [{**prop("a", 1), "media": [photo("m1")]}])
    settings.paths.snapshots.mkdir(parents=True)
    (settings.paths.snapshots / "media").write_bytes(b"in the way")
    with pytest.raises(UpdateFailed, match=r"publishing the serving snapshot: .*snapshots.media"):
        run_update(settings.paths)
    assert not settings.paths.snapshot_pointer.exists()
    assert sorted(path.suffix for path in (settings.paths.snapshots / "property").iterdir()) == [
        ".documents",
        ".duckdb",
        ".places",
    ]
    (settings.paths.snapshots / "media").unlink()
    run_update(settings.paths)
    pointer, reader = served_snapshot(settings)
    assert set(pointer["tables"].values()) == {"built"}
    assert reader.execute('SELECT "MediaKey" FROM media').fetchall() == [("QOBRIX_MEDIA_m1",)]
    assert reader.execute('SELECT "ListingKey" FROM property').fetchall() == [("QOBRIX_a",)]


def test_a_pipeline_older_than_the_published_layout_refuses_to_publish_over_it(settings: Settings) -> None:
    """A downgraded pipeline neither patches nor serves on files of a layout it does not know: the
    update fails naming both layouts, and the pointer and its files stay as they were."""
    land(settings, "s1", [{**prop("a", 1), "media": [photo("m1")]}])
    run_update(settings.paths)
    newer = {**orjson.loads(settings.paths.snapshot_pointer.read_bytes()), "layout": LAYOUT + 1}
    settings.paths.snapshot_pointer.write_bytes(orjson.dumps(newer))
    served = {path: path.stat().st_mtime_ns for path in settings.paths.snapshots.glob("*/*")}
    land(settings, "s2", [{**prop("a", 2, price=5), "media": [photo("m1")]}])
    with pytest.raises(UpdateFailed, match=rf"publishing the serving snapshot: .*layout {LAYOUT + 1}.* up to {LAYOUT}"):
        run_update(settings.paths)
    assert orjson.loads(settings.paths.snapshot_pointer.read_bytes()) == newer
    assert {path: path.stat().st_mtime_ns for path in settings.paths.snapshots.glob("*/*")} == served


@pytest.fixture
def eastern_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local zone is New York (DuckDB takes a new connection's zone from it)."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_documents_are_written_in_utc_whatever_the_local_zone(settings: Settings, eastern_local_time: None) -> None:
    land(settings, "s1", [{**prop("a", 1), "media": [photo("m1")]}])
    run_update(settings.paths)
    pointer, reader = served_snapshot(settings)
    [(at, size)] = reader.execute('SELECT "__document_at", "__document_size" FROM property').fetchall()
    document = open_documents(reader, settings.paths.snapshots, pointer).read("property", at, size)
    assert orjson.loads(document)["ModificationTimestamp"] == "2026-01-01T00:01:00Z"


def test_a_media_only_change_reaches_silver_though_modified_did_not_move(settings: Settings) -> None:
    """Qobrix moves `last_media_update`, not `modified`, when only a property's media change."""
    first = {**prop("a", 1), "last_media_update": (T0 + timedelta(minutes=1)).isoformat(), "media": [photo("m1")]}
    land(settings, "s1", [first])
    run_update(settings.paths)
    second = {
        **first,
        "last_media_update": (T0 + timedelta(minutes=5)).isoformat(),
        "media": [photo("m1"), photo("m2")],
    }
    land(settings, "s2", [second])
    run_update(settings.paths)
    [silver] = rows(settings, "qobrix_silver.property")
    assert [media["id"] for media in silver["media"]] == ["m1", "m2"]
    assert sorted(row["media_id"] for row in rows(settings, "qobrix_silver.media")) == ["m1", "m2"]


def test_vacuum_removes_files_no_current_version_uses_and_updates_go_on(settings: Settings) -> None:
    land(settings, "s1", [prop("a", 1), prop("b", 1)])
    run_update(settings.paths)
    run_update(settings.paths, full_refresh=True)
    before = {name: rows(settings, name) for name in ("qobrix_silver.property", "reso_gold.property")}
    orphan = settings.paths.lakehouse / "reso_gold" / "property" / "part-left-by-a-failed-write.parquet"
    orphan.write_bytes(b"PAR1")
    parquet = set(settings.paths.lakehouse.rglob("*.parquet"))
    removed = vacuum_lakehouse(settings.paths, retention_hours=0)
    assert removed["reso_gold.property"] >= 1 and removed["qobrix_silver.property"] >= 1
    assert not orphan.exists(), "a file no version names (a write that failed before its commit) is removed"
    assert len(parquet) - len(set(settings.paths.lakehouse.rglob("*.parquet"))) == sum(removed.values())
    assert {name: rows(settings, name) for name in before} == before
    assert vacuum_lakehouse(settings.paths, retention_hours=0)["reso_gold.property"] == 0
    land(settings, "s2", [prop("a", 2, price=200_000), prop("c", 2)])
    run_update(settings.paths)
    assert gold_prices(settings) == {"QOBRIX_a": 200_000, "QOBRIX_b": 100_000, "QOBRIX_c": 100_000}


def test_a_digest_with_every_row_replaced_by_none_is_the_empty_table_s() -> None:
    """What `rows_digest` gives an empty table: a view refreshed by key to nothing must compare equal."""
    held = orjson.dumps([["k"], 2, "5", "7"]).decode()
    empty = orjson.dumps([["k"], 0, "None", "None"]).decode()
    assert replaced_digest(held, removed=held, added=empty) == empty
    assert replaced_digest(held, removed=empty, added=empty) == held
    assert replaced_digest(None, removed=held, added=empty) is None


def update_states(settings: Settings) -> dict[str, str]:
    """Each update's last state, from the event log."""
    events = duckdb.connect()
    events.register("events", delta_rows(table(settings, EVENT_LOG)))
    found = events.execute(
        "SELECT origin.update_id, arg_max(details::JSON->>'$.update_progress.state', sequence) FROM events "
        "WHERE event_type = 'update_progress' GROUP BY ALL"
    ).fetchall()
    return dict(found)


@pytest.mark.parametrize(
    ("canceled_during", "later_flow"),
    [("qobrix_bronze.properties", "qobrix_silver.property"), ("qobrix_silver.property", "reso_gold.property")],
)
def test_a_canceled_update_finishes_the_running_flow_starts_no_other_and_publishes_nothing(
    settings: Settings, canceled_during: str, later_flow: str
) -> None:
    land(settings, "s1", [prop("a", 1, price=100)])
    run_update(settings.paths)
    published = settings.paths.snapshot_pointer.read_bytes()
    land(settings, "s2", [prop("a", 2, price=200), prop("b", 2)])
    versions = {name: table(settings, name).version() for name in (canceled_during, later_flow)}
    cancel = threading.Event()

    def cancel_while(dataset: str, state: str) -> None:
        if dataset == canceled_during and state == "RUNNING":
            cancel.set()

    with pytest.raises(UpdateCanceled, match="was canceled before "):
        run_update(settings.paths, progress=cancel_while, cancel=cancel, cause="API_CALL")
    assert settings.paths.snapshot_pointer.read_bytes() == published, "a canceled update published"
    assert sorted(update_states(settings).values()) == ["CANCELED", "COMPLETED"]
    assert table(settings, canceled_during).version() == versions[canceled_during] + 1, "the running flow finished"
    assert table(settings, later_flow).version() == versions[later_flow], "a flow after the cancel ran"
    assert gold_prices(settings) == {"QOBRIX_a": 100.0}
    rerun = run_update(settings.paths)
    assert rerun.state == "COMPLETED" and gold_prices(settings) == {"QOBRIX_a": 200.0, "QOBRIX_b": 100_000.0}


def test_an_update_canceled_before_it_starts_runs_no_flow(settings: Settings) -> None:
    land(settings, "s1", [prop("a", 1)])
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(UpdateCanceled):
        run_update(settings.paths, cancel=cancel)
    assert table(settings, "qobrix_bronze.properties") is None
    assert run_update(settings.paths).state == "COMPLETED" and gold_prices(settings) == {"QOBRIX_a": 100_000.0}


def test_the_event_log_records_what_an_update_refreshed_whole(settings: Settings) -> None:
    """DLT's create_update shape, which the pipeline UI reads to tell a full refresh from an update and
    to show what started it."""
    land(settings, "s1", [prop("a", 1)])
    first = run_update(settings.paths, full_refresh=True)
    second = run_update(settings.paths, refresh=["reso_gold.property"], cause="SCHEDULED")

    def created(update_id: str) -> dict:
        events = duckdb.connect()
        events.register("events", delta_rows(table(settings, EVENT_LOG)))
        [(details,)] = events.execute(
            "SELECT details FROM events WHERE origin.update_id = ? AND event_type = 'create_update'", [update_id]
        ).fetchall()
        return orjson.loads(details)["create_update"]

    assert created(first.update_id)["full_refresh"] == sorted(load_graph().datasets)
    assert created(second.update_id)["full_refresh"] == []
    assert created(second.update_id)["refresh_selection"] == ["reso_gold.property"]
    assert created(first.update_id)["cause"] == "USER_ACTION" and created(second.update_id)["cause"] == "SCHEDULED"


def test_a_statement_failing_inside_a_snapshot_transaction_leaves_the_file_attachable(tmp_path: Path) -> None:
    """A base that fails to patch mid-transaction must not keep its file attached: the next base, or
    the build, attaches the same file on the same cursor."""
    path = tmp_path / "table.duckdb"
    with duckdb.connect() as con, publish.serving_storage(con):
        with pytest.raises(duckdb.Error), publish.snapshot_database(path, con) as database:
            database.execute("BEGIN TRANSACTION")
            database.execute("CREATE TABLE rows (value INTEGER)")
            database.execute("SELECT * FROM no_such_table")
        with publish.snapshot_database(path, con) as database:
            assert database.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'rows'").fetchall() == [
                (0,)
            ]


def test_a_served_file_is_not_kept_when_gold_renamed_a_column_holding_the_same_values(tmp_path: Path) -> None:
    """A row's hash does not see column names: gold rows of the same values under a renamed column
    hash as the served ones. The served file is kept only when its columns are gold's."""
    lakehouse, con = Lakehouse(tmp_path / "lakehouse"), duckdb.connect()
    pointer_path = tmp_path / "snapshots" / "CURRENT.json"
    served_tables = {"reso_gold.thing": ("ThingKey",)}
    lakehouse.replace_with_relation(
        con, "reso_gold.thing", "(SELECT 'k' || i AS ThingKey, i AS Size FROM range(40) t(i))"
    )
    publish.publish_snapshot(lakehouse, pointer_path, served_tables, "u1", con)
    lakehouse.replace_with_relation(
        con, "reso_gold.thing", "(SELECT 'k' || i AS ThingKey, i AS Area FROM range(40) t(i))"
    )
    pointer = publish.publish_snapshot(Lakehouse(tmp_path / "lakehouse"), pointer_path, served_tables, "u2", con)

    assert pointer["tables"]["thing"] != publish.KEPT
    with duckdb.connect(str(tmp_path / "snapshots" / pointer["files"]["thing"]), read_only=True) as served_file:
        assert [row[0] for row in served_file.execute("DESCRIBE thing").fetchall()][:2] == ["ThingKey", "Area"]
