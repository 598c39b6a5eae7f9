"""Materialized views refreshed by key: only the keys an update changed are computed again, and the
view then holds exactly what computing it whole gives."""

from dataclasses import replace
from datetime import timedelta

import duckdb
import orjson
import pytest

from conf.entities import entities
from conf.settings import Settings
from ingestion.landing import LandingWriter
from pipelines import load_graph, run_update
from pipelines._engine.events import EVENT_LOG, MAINTENANCE_COMPLETE_RECOMPUTE, MAINTENANCE_ROW_BASED
from pipelines._engine.flows.materialized_view import ROWS_DIGEST_METADATA
from pipelines._engine.lakehouse import Lakehouse, register_delta
from pipelines._engine.maintenance import vacuum_lakehouse
from pipelines.declaration import DeclarationError, Graph, IncrementalRefresh, build_graph
from tests.conftest import delta_rows
from tests.test_engine import T0, land, photo, prop, rows, table

KEYED_VIEWS = ["qobrix_silver.media", "reso_gold.property", "reso_gold.media"]


def techniques(settings: Settings, update_id: str) -> dict[str, tuple[str, str | None]]:
    """Each view's refresh technique in an update's planning events, with why not row-based."""
    return {dataset: planned[:2] for dataset, planned in planning(settings, update_id).items()}


def planning_events(settings: Settings, update_id: str) -> dict[str, dict]:
    """Each dataset's `planning_information` in an update's event log."""
    con = duckdb.connect()
    con.register("events", delta_rows(table(settings, EVENT_LOG)))
    found = con.execute(
        "SELECT origin.dataset_name, details FROM events WHERE origin.update_id = ? "
        "AND event_type = 'planning_information'",
        [update_id],
    ).fetchall()
    return {dataset: orjson.loads(details)["planning_information"] for dataset, details in found}


def planning(settings: Settings, update_id: str) -> dict[str, tuple[str, str | None, dict | None]]:
    """Each dataset's refresh technique in an update's planning events, why not row-based, and how its
    table was written."""
    planned = {}
    for dataset, information in planning_events(settings, update_id).items():
        options = information["technique_information"]
        [chosen] = [option for option in options if option["is_chosen"]]
        issues = [issue["reason"] for option in options for issue in option.get("incrementalization_issues", [])]
        planned[dataset] = (chosen["maintenance_type"], issues[0] if issues else None, information.get("write"))
    return planned


def inputs_read(settings: Settings, update_id: str) -> dict[str, dict[str, str]]:
    """How each view refreshed by key in an update read each of its inputs, from its planning event."""
    read = {dataset: information.get("inputs") for dataset, information in planning_events(settings, update_id).items()}
    return {dataset: inputs for dataset, inputs in read.items() if inputs}


def digest(settings: Settings, name: str) -> tuple:
    con = duckdb.connect()
    register_delta(con, "rows", table(settings, name))
    return con.execute("SELECT count(*), sum(hash(r)::HUGEINT), bit_xor(hash(r)) FROM rows r").fetchall()[0]


def listing(key: str, minutes: int, photos: list[str], price: float = 100_000) -> dict:
    return {**prop(key, minutes, price=price), "media": [photo(media_id) for media_id in photos]}


def test_views_refreshed_by_key_hold_what_computing_them_whole_gives(settings: Settings, scd1_apply: str) -> None:
    land(
        settings,
        "s1",
        [
            listing("a", 1, ["a1", "a2"]),
            listing("b", 1, ["b1"]),
            listing("c", 1, ["c1", "c2", "c3"]),
            listing("d", 1, []),
            listing("e", 1, ["e1"]),
        ],
    )
    run_update(settings.paths)
    land(
        settings,
        "s2",
        [
            listing("a", 2, ["a1", "a2"], price=250_000),
            listing("b", 2, ["b1", "b2", "b3"]),
            listing("c", 2, ["c3"]),
            listing("e", 0, ["e1", "e9"], price=1),
            listing("f", 2, ["f1"]),
        ],
    )
    land(settings, "s2-deletes", [prop("d", 2)], operation="delete")
    result = run_update(settings.paths)

    planned = planning(settings, result.update_id)
    assert {name: planned[name][0] for name in KEYED_VIEWS} == dict.fromkeys(KEYED_VIEWS, MAINTENANCE_ROW_BASED)
    assert planned["reso_gold.lookup"][0] == MAINTENANCE_COMPLETE_RECOMPUTE
    # How each table changed by key was written: its replaced rows marked deleted, or all of it anew.
    mode = "rewrite" if scd1_apply == "rewrite" else "merge-on-read"
    written = {name: planned[name][2]["mode"] for name in [*KEYED_VIEWS, "qobrix_silver.property"]}
    assert written == dict.fromkeys([*KEYED_VIEWS, "qobrix_silver.property"], mode)
    if scd1_apply != "rewrite":
        # a, b and c changed, f is new, d deleted, and e's change is older than its row: a, b, c and d
        # replaced, a, b, c and f added; found by scanning the table, or through its key index.
        located_by = "key index" if scd1_apply == "indexed" else "scan"
        assert planned["qobrix_silver.property"][2] == {
            "mode": "merge-on-read",
            "rows_marked_deleted": 4,
            "rows_added": 4,
            "located_by": located_by,
        }
        assert {name: planned[name][2]["located_by"] for name in KEYED_VIEWS} == dict.fromkeys(KEYED_VIEWS, located_by)
        assert planned["qobrix_silver.property"][0] == MAINTENANCE_ROW_BASED
        # The SCD 2 history is merged on read too, saying how many rows it marked deleted and added.
        history = planned["qobrix_silver.property_history"][2]
        assert set(history) == {"mode", "rows_marked_deleted", "rows_added"} and history["mode"] == "merge-on-read"
        for name in KEYED_VIEWS:
            assert "deletionVectors" in table(settings, name).protocol().reader_features, name
    media = sorted((row["ResourceRecordID"], row["MediaObjectID"]) for row in rows(settings, "reso_gold.media"))
    expected = {"a": ["a1", "a2"], "b": ["b1", "b2", "b3"], "c": ["c3"], "e": ["e1"], "f": ["f1"]}
    assert media == [(key, media_id) for key, ids in expected.items() for media_id in ids]
    prices = {row["ListingKey"]: float(row["ListPrice"]) for row in rows(settings, "reso_gold.property")}
    assert prices == {
        "QOBRIX_a": 250_000,
        "QOBRIX_b": 100_000,
        "QOBRIX_c": 100_000,
        "QOBRIX_e": 100_000,
        "QOBRIX_f": 100_000,
    }

    # The digest each view's commit records (the next update compares with it) follows the rows replaced.
    land(settings, "s3", [listing("b", 3, ["b3", "b4"]), listing("c", 3, ["c3"], price=5)])
    result = run_update(settings.paths)
    assert {name: techniques(settings, result.update_id)[name][0] for name in KEYED_VIEWS} == dict.fromkeys(
        KEYED_VIEWS, MAINTENANCE_ROW_BASED
    )
    lakehouse = Lakehouse(settings.paths.lakehouse)
    for name in KEYED_VIEWS:
        recorded = lakehouse.last_commit_metadata(name).get(ROWS_DIGEST_METADATA)
        if scd1_apply != "rewrite":
            # Merged on read, the replaced rows are not read whole for a digest: none is recorded.
            assert recorded is None, name
            continue
        count, total, xor = digest(settings, name)
        assert orjson.loads(recorded)[1:] == [count, str(total), str(xor)], f"{name}'s recorded digest is not its rows'"

    by_key = {name: digest(settings, name) for name in KEYED_VIEWS}
    whole = run_update(settings.paths, full_refresh_selection=KEYED_VIEWS)
    assert {name: techniques(settings, whole.update_id)[name][0] for name in KEYED_VIEWS} == dict.fromkeys(
        KEYED_VIEWS, MAINTENANCE_COMPLETE_RECOMPUTE
    )
    assert {name: digest(settings, name) for name in KEYED_VIEWS} == by_key


def land_projects(settings: Settings, sync_id: str, photos_by_project: dict[str, list[str]], minutes: int) -> None:
    stamp = (T0 + timedelta(minutes=minutes)).isoformat()
    records = [
        {"id": key, "name": key, "modified": stamp, "media": [photo(media_id) for media_id in photos]}
        for key, photos in photos_by_project.items()
    ]
    LandingWriter(settings.landing_root, sync_id, started=T0).write_page(entities()["projects"], records)


def test_a_project_change_refreshes_by_key_the_listings_that_name_it(settings: Settings) -> None:
    in_project = {"inherit_project_media": True}
    land(
        settings,
        "s1",
        [
            {**listing("a", 1, ["a1"]), **in_project, "project": "P"},
            listing("b", 1, ["b1"]),
            {**listing("c", 1, ["c1"]), **in_project, "project": "Q", "developer_id": "D"},
        ],
    )
    land_projects(settings, "s1-projects", {"P": ["p1"], "Q": ["q1"]}, minutes=1)
    developers = [{"id": key, "name": f"Builder {key}", "is_company": True, "modified": T0.isoformat()} for key in "DE"]
    LandingWriter(settings.landing_root, "s1-contacts", started=T0).write_page(entities()["contacts"], developers)
    run_update(settings.paths)
    land_projects(settings, "s2-projects", {"P": ["p1", "p2"]}, minutes=2)
    land(settings, "s2", [{**listing("c", 2, ["c1", "c2"]), **in_project, "project": "Q", "developer_id": "D"}])
    result = run_update(settings.paths)

    planned = techniques(settings, result.update_id)
    assert {name: planned[name][0] for name in KEYED_VIEWS} == dict.fromkeys(KEYED_VIEWS, MAINTENANCE_ROW_BASED)
    media = sorted((row["property_id"], row["media_id"]) for row in rows(settings, "qobrix_silver.media"))
    assert media == [("a", "a1"), ("a", "p1"), ("a", "p2"), ("b", "b1"), ("c", "c1"), ("c", "c2"), ("c", "q1")]
    # The projects (and developers) read are only those the listings recomputed name.
    read = inputs_read(settings, result.update_id)
    assert read["qobrix_silver.media"] == {
        "qobrix_silver.property": "by key",
        "qobrix_silver.project": "through qobrix_silver.property.project",
    }
    assert read["reso_gold.property"]["qobrix_silver.project"] == "through qobrix_silver.property.project"
    assert read["reso_gold.property"]["qobrix_silver.contact"] == "through qobrix_silver.property.developer_id"
    assert read["reso_gold.media"] == {"qobrix_silver.media": "by key"}
    builders = {row["ListingKey"]: row["BuilderName"] for row in rows(settings, "reso_gold.property")}
    assert builders == {"QOBRIX_a": None, "QOBRIX_b": None, "QOBRIX_c": "Builder D"}
    by_key = {name: digest(settings, name) for name in KEYED_VIEWS}
    run_update(settings.paths, full_refresh_selection=KEYED_VIEWS)
    assert {name: digest(settings, name) for name in KEYED_VIEWS} == by_key


def test_a_key_change_that_leaves_a_views_rows_as_they_were_rewrites_nothing(settings: Settings) -> None:
    land(settings, "s1", [listing("a", 1, ["a1"]), listing("b", 1, ["b1"])])
    run_update(settings.paths)
    lakehouse = Lakehouse(settings.paths.lakehouse)
    media_files = lakehouse.fingerprint("qobrix_silver.media")
    land(settings, "s2", [listing("a", 2, ["a1"], price=300_000)])
    result = run_update(settings.paths)
    by_name = {flow.dataset: flow.status for flow in result.flows}
    assert techniques(settings, result.update_id)["qobrix_silver.media"][0] == MAINTENANCE_ROW_BASED
    assert by_name["reso_gold.media"] == "SKIPPED"
    assert lakehouse.fingerprint("qobrix_silver.media") == media_files


def test_a_view_is_computed_whole_when_an_input_its_rows_read_whole_changed(settings: Settings) -> None:
    land(settings, "s1", [listing("a", 1, ["a1"])])
    run_update(settings.paths)
    land(settings, "s2", [listing("a", 2, ["a1"], price=300_000)])
    graph = load_graph()
    nothing_by_key = {
        name: replace(dataset, incremental=replace(dataset.incremental, inputs=()))
        if name == "reso_gold.property"
        else dataset
        for name, dataset in graph.datasets.items()
    }
    result = run_update(settings.paths, graph=Graph(nothing_by_key))
    technique, reason = techniques(settings, result.update_id)["reso_gold.property"]
    assert technique == MAINTENANCE_COMPLETE_RECOMPUTE
    assert reason == "it has not been computed under its current definition"

    land(settings, "s3", [listing("a", 3, ["a1"], price=400_000)])
    result = run_update(settings.paths, graph=Graph(nothing_by_key))
    technique, reason = techniques(settings, result.update_id)["reso_gold.property"]
    assert technique == MAINTENANCE_COMPLETE_RECOMPUTE
    assert reason == "qobrix_silver.property changed, and each of its rows reads all of qobrix_silver.property"
    assert [float(row["ListPrice"]) for row in rows(settings, "reso_gold.property")] == [400_000]


def test_a_view_left_behind_by_an_update_that_skipped_it_is_computed_whole_then_by_key_again(
    settings: Settings,
) -> None:
    land(settings, "s1", [listing("a", 1, ["a1"]), listing("b", 1, ["b1"])])
    run_update(settings.paths)
    land(settings, "s2", [listing("a", 2, ["a1", "a2"])])
    run_update(settings.paths, refresh=["qobrix_bronze.properties", "qobrix_silver.property"])
    land(settings, "s3", [listing("b", 3, ["b1", "b2"])])
    result = run_update(settings.paths)
    technique, reason = techniques(settings, result.update_id)["qobrix_silver.media"]
    assert technique == MAINTENANCE_COMPLETE_RECOMPUTE
    assert reason == "it was not current with qobrix_silver.property before this update"
    assert sorted(row["media_id"] for row in rows(settings, "qobrix_silver.media")) == ["a1", "a2", "b1", "b2"]

    land(settings, "s4", [listing("b", 4, ["b2"])])
    result = run_update(settings.paths)
    assert techniques(settings, result.update_id)["qobrix_silver.media"][0] == MAINTENANCE_ROW_BASED
    assert sorted(row["media_id"] for row in rows(settings, "qobrix_silver.media")) == ["a1", "a2", "b2"]


def test_a_changed_definition_recomputes_a_view_whose_inputs_did_not_change(settings: Settings) -> None:
    land(settings, "s1", [listing("a", 1, ["a1"])])
    run_update(settings.paths)
    graph = load_graph()
    media = graph["reso_gold.media"]
    named = "CAST('Qobrix' AS STRING) AS OriginatingSystemName"
    assert named in media.sql
    changed = replace(media, sql=media.sql.replace(named, "CAST('Qobrix CRM' AS STRING) AS OriginatingSystemName"))
    result = run_update(settings.paths, graph=Graph({**graph.datasets, media.name: changed}))
    by_name = {flow.dataset: flow.status for flow in result.flows}
    assert by_name["reso_gold.media"] == "COMPLETED" and by_name["reso_gold.property"] == "SKIPPED"
    assert [row["OriginatingSystemName"] for row in rows(settings, "reso_gold.media")] == ["Qobrix CRM"]


def test_a_declaration_the_rows_do_not_follow_is_caught_and_the_view_computed_whole(settings: Settings) -> None:
    """Gold Property's ListingKey is 'QOBRIX_' || id: declared as following silver's id, no row matches a key."""
    land(settings, "s1", [listing("a", 1, ["a1"]), listing("b", 1, ["b1"])])
    graph = load_graph()
    prop_view = graph["reso_gold.property"]
    wrong = replace(prop_view, incremental=replace(prop_view.incremental, column="ListingKey"))
    misdeclared = Graph({**graph.datasets, prop_view.name: wrong})
    run_update(settings.paths, graph=misdeclared)
    land(settings, "s2", [listing("a", 2, ["a1"], price=300_000)])
    result = run_update(settings.paths, graph=misdeclared)
    technique, reason = techniques(settings, result.update_id)["reso_gold.property"]
    assert technique == MAINTENANCE_COMPLETE_RECOMPUTE
    assert reason == "1 rows computed for its changed keys hold other values in ListingKey"
    prices = {row["ListingKey"]: float(row["ListPrice"]) for row in rows(settings, "reso_gold.property")}
    assert prices == {"QOBRIX_a": 300_000, "QOBRIX_b": 100_000}


def test_a_vacuum_between_updates_leaves_views_refreshed_by_key(settings: Settings) -> None:
    land(settings, "s1", [listing("a", 1, ["a1"]), listing("b", 1, ["b1"])])
    run_update(settings.paths)
    land(settings, "s2", [listing("a", 2, ["a1", "a2"])])
    run_update(settings.paths)
    vacuum_lakehouse(settings.paths, retention_hours=0)
    land(settings, "s3", [listing("b", 3, ["b2"])])
    result = run_update(settings.paths)
    assert {name: techniques(settings, result.update_id)[name][0] for name in KEYED_VIEWS} == dict.fromkeys(
        KEYED_VIEWS, MAINTENANCE_ROW_BASED
    )
    assert sorted(row["media_id"] for row in rows(settings, "qobrix_silver.media")) == ["a1", "a2", "b2"]


@pytest.mark.parametrize(
    "declared",
    [
        {"column": "x"},
        {"column": "x", "inputs": []},
        "x",
        {"column": "x", "inputs": {"qobrix_silver.a": "id"}, "through": {"qobrix_silver.b": "qobrix_silver.c.id"}},
    ],
)
def test_an_incremental_declaration_without_its_inputs_is_refused_by_name(declared: object) -> None:
    with pytest.raises(DeclarationError, match=r"silver_x\.sql: incremental"):
        IncrementalRefresh.from_spec(declared, "silver_x.sql")


def test_an_incremental_declaration_naming_an_input_the_view_does_not_read_is_refused() -> None:
    unread = IncrementalRefresh("ResourceRecordID", (("qobrix_silver.viewing", "id"),))
    datasets = [replace(d, incremental=unread) if d.name == "reso_gold.media" else d for d in load_graph().ordered()]
    with pytest.raises(DeclarationError, match=r"reso_gold\.media: incremental refresh names qobrix_silver\.viewing"):
        build_graph(datasets)


def test_an_incremental_declaration_on_anything_but_a_materialized_view_is_refused() -> None:
    silver = load_graph()["qobrix_silver.property"]
    declared = replace(silver, incremental=IncrementalRefresh("id", (("qobrix_silver.property_changes", "id"),)))
    with pytest.raises(DeclarationError, match="incremental refresh belongs to materialized views"):
        declared.validate()


def test_a_recomputed_row_taking_a_unique_key_a_kept_row_holds_computes_the_view_whole(settings: Settings) -> None:
    """A photo moved to listing b while listing a, which still names it, did not change: b's media row
    recomputed by key has the MediaKey a's row holds. Which one gold keeps is decided over the whole
    view, as a full refresh decides."""
    land(settings, "s1", [listing("a", 1, ["a1"]), listing("b", 1, ["b1"])])
    run_update(settings.paths)
    land(settings, "s2", [listing("b", 2, ["b1", "a1"])])
    result = run_update(settings.paths)
    planned = techniques(settings, result.update_id)
    assert planned["reso_gold.property"] == (MAINTENANCE_ROW_BASED, None)
    assert planned["reso_gold.media"] == (
        MAINTENANCE_COMPLETE_RECOMPUTE,
        "a row computed for its changed keys has a MediaKey a row not recomputed holds",
    )
    after_update = digest(settings, "reso_gold.media")
    run_update(settings.paths, full_refresh_selection=["reso_gold.media"])
    assert digest(settings, "reso_gold.media") == after_update
