"""The ingestion job against the sandbox: everything lands, changes and deletes are captured, nothing is lost."""

import gzip
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import fsspec
import orjson
import pytest

from conf.entities import entities, select_entities
from conf.settings import Settings
from ingestion.cli import make_client, sync_with_progress
from ingestion.client import Page, QobrixClient
from ingestion.errors import MalformedResponseError, QobrixError
from ingestion.landing import LandingWriter
from ingestion.sandbox import SANDBOX_API_KEY, SANDBOX_API_USER, SandboxServer, SandboxWorld
from ingestion.sandbox.faults import FaultConfig
from ingestion.sandbox.world import Changes
from ingestion.scan import Scanner, Window, parse_time
from ingestion.state import SyncState
from ingestion.sync import EntityReport, Sync, SyncOptions, SyncReport
from pipelines import run_update
from tests.conftest import FAST_RETRIES, make_sync
from tests.landing_checks import assert_everything_landed, landed, landed_pages, latest, page_lines, served
from tests.test_engine import rows as gold_rows


def test_first_sync_lands_every_record_of_every_entity(settings: Settings, world: SandboxWorld, sync) -> None:
    report = sync()
    assert report.status == "succeeded" and report.mode == "incremental"
    assert {e.entity: e.mode for e in report.entities}["properties"] == "full"
    assert_everything_landed(settings, world)
    marks = {mark.entity: mark for mark in SyncState(settings.sync_state_path).watermarks()}
    assert set(marks) == set(entities())
    assert marks["properties"].modified == max(r["modified"] for r in served(world, "properties").values())


def test_inline_media_arrive_with_their_properties(settings: Settings, world: SandboxWorld, sync) -> None:
    sync(entities=["properties"])
    records = latest(landed(settings)["properties"])
    with_project = [r for r in records.values() if r["project"] and r["inherit_project_media"]]
    assert with_project and all(any(m["related_model"] == "Projects" for m in r["media"]) for r in with_project)
    assert all(
        {m["category"]["name"] for m in r["media"]} <= {"photos", "documents", "floorplans"} for r in records.values()
    )


def test_incremental_sync_captures_edits_media_trash_restores_and_creations(
    settings: Settings, world: SandboxWorld, sync
) -> None:
    sync()
    world.advance(changes={"properties": Changes(trashes=3)})
    plan = {
        "properties": Changes(creates=3, updates=6, media_updates=4, trashes=2, restores=2, deletes=1),
        "contacts": Changes(updates=3),
        "property-viewings": Changes(creates=2),
    }
    report = world.advance(changes=plan)
    second = sync()
    assert {e.entity: e.mode for e in second.entities}["properties"] == "incremental"
    lines = landed(settings, second.sync_id)
    upserted = {line["record"]["id"] for line in lines["properties"] if line["operation"] == "upsert"}
    deleted = {line["record"]["id"] for line in lines["properties"] if line["operation"] == "delete"}
    for kind in ("created", "updated", "media_updated", "restored"):
        assert set(report.ids("properties", kind)) <= upserted, kind
    assert set(report.ids("properties", "trashed")) <= deleted
    assert len(upserted) < world.property_count / 4, "an incremental sync fetches changes, not everything"
    assert_everything_landed(settings, world)


def properties_watermark(settings: Settings) -> datetime:
    state = SyncState(settings.sync_state_path)
    try:
        return parse_time(state.watermark("properties").modified)
    finally:
        state.close()


@pytest.mark.parametrize("kind", ["updated", "media_updated", "trashed", "trashed_leaving_modified"])
def test_a_change_stamped_behind_the_watermark_within_the_overlap_is_captured(
    settings: Settings, world: SandboxWorld, sync, kind: str
) -> None:
    """A Qobrix node whose clock lags stamps an edit two minutes behind what the last sync read:
    the next incremental sync starts the overlap before the watermark and still meets it. A record
    trashed without a new `modified` is met too: trashed records are scanned by when they were trashed."""
    sync()
    record_id = world.generator.id("properties", 5)
    world.change_stamped_at("properties", record_id, kind, properties_watermark(settings) - timedelta(minutes=2))
    second = sync()
    operation = "delete" if kind.startswith("trashed") else "upsert"
    lines = landed(settings, second.sync_id)["properties"]
    assert record_id in {line["record"]["id"] for line in lines if line["operation"] == operation}
    assert_everything_landed(settings, world)


def test_the_configured_overlap_is_the_one_scanned(settings: Settings, world: SandboxWorld, sandbox) -> None:
    """With MLS2_CDC_OVERLAP_SECONDS=60, an edit stamped 30 s behind the watermark is met and one
    stamped two minutes behind is past the overlap."""
    narrow = settings.model_copy(update={"mls2_cdc_overlap_seconds": 60})
    client = make_client(narrow, sandbox.base_url, SANDBOX_API_USER, SANDBOX_API_KEY)
    try:
        sync_with_progress(narrow, client, entities=["properties"], full_refresh=False, max_properties=None)
        watermark = properties_watermark(narrow)
        within, past = world.generator.id("properties", 5), world.generator.id("properties", 6)
        world.change_stamped_at("properties", within, "updated", watermark - timedelta(seconds=30))
        world.change_stamped_at("properties", past, "updated", watermark - timedelta(minutes=2))
        report = sync_with_progress(narrow, client, entities=["properties"], full_refresh=False, max_properties=None)
    finally:
        client.close()
    landed_ids = {line["record"]["id"] for line in landed(narrow, report.sync_id)["properties"]}
    assert within in landed_ids and past not in landed_ids


def test_full_refresh_turns_vanished_records_into_deletes(settings: Settings, world: SandboxWorld, sync) -> None:
    sync()
    report = world.advance(changes={"properties": Changes(deletes=3), "opportunities": Changes(trashes=1)})
    incremental = sync()
    assert not {line["record"]["id"] for line in landed(settings, incremental.sync_id)["properties"]} & set(
        report.ids("properties", "deleted")
    ), "a hard delete leaves no trace an incremental sync can see"
    full = sync(full_refresh=True)
    deletes = [line for line in landed(settings, full.sync_id)["properties"] if line["operation"] == "delete"]
    assert {line["record"]["id"] for line in deletes} == set(report.ids("properties", "deleted"))
    assert all(line["record"]["deleted_reason"] == "absent from a full refresh" for line in deletes)
    assert {e.entity: e.deletes for e in full.entities}["properties"] == 3


def test_a_reconciliation_lands_hard_deletes_without_a_full_refresh_and_gold_drops_them(
    settings: Settings, world: SandboxWorld, sync
) -> None:
    sync()
    run_update(settings.paths)
    report = world.advance(changes={"properties": Changes(deletes=4, updates=3), "contacts": Changes(deletes=2)})
    gone = set(report.ids("properties", "deleted"))

    reconciled = sync(reconcile=True)
    lines = landed(settings, reconciled.sync_id)
    deletes = [line for line in lines["properties"] if line["operation"] == "delete"]
    assert {line["record"]["id"] for line in deletes} == gone
    assert {line["record"]["deleted_reason"] for line in deletes} == {"absent from a reconciliation"}
    assert {line["record"]["id"] for line in lines["contacts"] if line["operation"] == "delete"} == set(
        report.ids("contacts", "deleted")
    )
    upserted = [line for line in lines["properties"] if line["operation"] == "upsert"]
    assert len(upserted) < world.property_count / 4, "the id scan lands no records"
    by_entity = {entity.entity: entity for entity in reconciled.entities}
    assert by_entity["properties"].reconciled and by_entity["properties"].deletes == len(gone)
    assert by_entity["properties"].mode == "incremental"

    run_update(settings.paths)
    served_keys = {row["ListingKey"] for row in gold_rows(settings, "reso_gold.property")}
    assert served_keys and not served_keys & {f"QOBRIX_{record_id}" for record_id in gone}
    assert_everything_landed(settings, world)


def test_an_incremental_sync_reconciles_on_its_own_when_the_last_reconciliation_is_due(
    settings: Settings, world: SandboxWorld, sync
) -> None:
    sync()
    world.advance(changes={"properties": Changes(deletes=2)})
    quiet = sync(reconcile_every=timedelta(hours=1))
    assert not any(entity.reconciled for entity in quiet.entities if entity.mode == "incremental")
    assert not [line for line in landed(settings, quiet.sync_id)["properties"] if line["operation"] == "delete"]

    due = sync(reconcile_every=timedelta(0))
    assert {e.entity for e in due.entities if e.reconciled} >= {"properties", "contacts", "agents"}
    assert len([line for line in landed(settings, due.sync_id)["properties"] if line["operation"] == "delete"]) == 2
    state = SyncState(settings.sync_state_path)
    try:
        assert datetime.now(UTC) - state.last_reconciled("properties") < timedelta(minutes=1)
    finally:
        state.close()
    never = sync(reconcile_every=None)
    assert not any(entity.reconciled for entity in never.entities if entity.mode == "incremental")


def test_a_reconciliation_withholds_its_deletes_when_too_many_records_vanished(
    settings: Settings, world: SandboxWorld, sync
) -> None:
    """An answer that lost a fifth of the listings must not empty the feed: no delete lands, and the
    report and the sync state say how many were withheld; the next reconciliation is on schedule."""
    sync()
    report = world.advance(changes={"properties": Changes(deletes=world.property_count // 5)})
    withheld = sync(reconcile=True, reconcile_max_deletes=0.1)
    properties = {entity.entity: entity for entity in withheld.entities}["properties"]
    assert properties.withheld_deletes == len(report.ids("properties", "deleted")) and properties.deletes == 0
    assert not properties.reconciled
    assert not [line for line in landed(settings, withheld.sync_id)["properties"] if line["operation"] == "delete"]
    state = SyncState(settings.sync_state_path)
    try:
        looked = {r.entity: r for r in state.reconciliations()}["properties"]
    finally:
        state.close()
    assert looked.sync_id == withheld.sync_id and looked.withheld_deletes == properties.withheld_deletes
    later = sync(reconcile_every=timedelta(hours=1))
    assert not {e.entity: e for e in later.entities}["properties"].withheld_deletes, "not rescanned every sync"
    allowed = sync(reconcile=True, reconcile_max_deletes=0.5)
    assert {e.entity: e.deletes for e in allowed.entities}["properties"] == len(report.ids("properties", "deleted"))


def test_a_reconciliation_lands_a_listing_it_meets_that_was_taken_for_deleted(
    settings: Settings, world: SandboxWorld, sync
) -> None:
    """A live listing the sync state holds as deleted (a wrong delete, or one never landed) is fetched
    whole and landed again, media included: nothing else would fetch a listing no one edits."""
    sync()
    wrongly_deleted = world.generator.id("properties", 3)
    state = SyncState(settings.sync_state_path)
    try:
        state.record_page("earlier", "properties", ids=[wrongly_deleted], live=False, deletes=1)
    finally:
        state.close()
    reconciled = sync(reconcile=True)
    [line] = [
        line for line in landed(settings, reconciled.sync_id)["properties"] if line["record"]["id"] == wrongly_deleted
    ]
    assert line["operation"] == "upsert" and line["record"] == served(world, "properties")[wrongly_deleted]


class CutShort(QobrixClient):
    """A Qobrix whose lean property pages end (a short last page) after `lean_pages` of them."""

    def __init__(self, *args: object, lean_pages: int) -> None:
        super().__init__(*args)
        self.lean_pages_left = lean_pages

    def list_page(self, entity: str, path: str, params: dict) -> Page:
        page = super().list_page(entity, path, params)
        if entity == "properties" and params.get("media") == "false" and int(params.get("limit", 0)) > 1:
            self.lean_pages_left -= 1
            if self.lean_pages_left < 0:
                return Page(page.number, page.records[:3], page.count, has_next=False)
        return page


def test_an_id_scan_that_meets_fewer_records_than_qobrix_counted_withholds_its_deletes(settings: Settings) -> None:
    """However generous MLS2_RECONCILE_MAX_DELETES_PERCENT is, a scan ending well short of the count
    Qobrix gave when it began lands no delete."""
    world = SandboxWorld(seed=29, properties=400)
    with SandboxServer(world) as server:
        args = (server.base_url, SANDBOX_API_USER, SANDBOX_API_KEY, FAST_RETRIES)
        run_sync(settings, QobrixClient(*args), SyncOptions(page_size=20))
        cut = run_sync(settings, CutShort(*args, lean_pages=10), SyncOptions(page_size=20, reconcile=True,
                       reconcile_max_deletes=0.9))  # fmt: skip
    properties = {entity.entity: entity for entity in cut.entities}["properties"]
    assert properties.withheld_deletes > 100 and properties.deletes == 0


class DeletesWhenTheIdScanStarts(QobrixClient):
    """A Qobrix where `deletes` listings are deleted right after the reconciliation counted them,
    before its first lean page: counted, never met."""

    def __init__(self, *args: object, world: SandboxWorld, deletes: int) -> None:
        super().__init__(*args)
        self.world, self.deletes = world, deletes
        self.deleted: list[str] = []

    def list_page(self, entity: str, path: str, params: dict) -> Page:
        lean = entity == "properties" and params.get("media") == "false" and int(params.get("limit", 0)) > 1
        if lean and not self.deleted:
            report = self.world.advance(changes={"properties": Changes(deletes=self.deletes)})
            self.deleted = report.ids("properties", "deleted")
        return super().list_page(entity, path, params)


def test_an_id_scan_short_of_the_count_by_no_more_than_one_percent_lands_its_deletes(settings: Settings) -> None:
    """Listings deleted while the id scan runs leave it short of the count Qobrix gave: short by
    1% of a large count at most (here 11 of 1,200, over the floor of 10) is such a scan, not one cut
    off, and their deletes land."""
    world = SandboxWorld(seed=31, properties=1_200)
    with SandboxServer(world) as server:
        args = (server.base_url, SANDBOX_API_USER, SANDBOX_API_KEY, FAST_RETRIES)
        run_sync(settings, QobrixClient(*args), SyncOptions(page_size=100))
        client = DeletesWhenTheIdScanStarts(*args, world=world, deletes=11)
        reconciled = run_sync(settings, client, SyncOptions(page_size=100, reconcile=True))
    properties = {entity.entity: entity for entity in reconciled.entities}["properties"]
    assert len(client.deleted) == 11
    assert properties.withheld_deletes == 0 and properties.deletes == 11
    deletes = [line for line in landed(settings, reconciled.sync_id)["properties"] if line["operation"] == "delete"]
    assert {line["record"]["id"] for line in deletes} == set(client.deleted)


def run_sync(
    settings: Settings, client: QobrixClient, options: SyncOptions, names: list[str] | None = None
) -> SyncReport:
    state = SyncState(settings.sync_state_path)
    try:
        selected = select_entities(names or ["properties"])
        return Sync(client=client, landing_root=settings.landing_root, state=state, entities=selected,
                    options=options).run()  # fmt: skip
    finally:
        state.close()


class LostAfterLeanPages(QobrixClient):
    """Counts the lean property pages (the id scan's); the connection is lost for good after `lean_pages`."""

    def __init__(self, *args: object, lean_pages: int | None = None) -> None:
        super().__init__(*args)
        self.lean_pages, self.lean_pages_left = 0, lean_pages
        self.searches: list[str | None] = []

    def list_page(self, entity: str, path: str, params: dict) -> Page:
        if entity == "properties" and params.get("media") == "false":
            if self.lean_pages_left == 0:
                raise QobrixError("connection lost", entity=entity, page=int(params.get("page", 1)))
            self.lean_pages += 1
            self.lean_pages_left = None if self.lean_pages_left is None else self.lean_pages_left - 1
            self.searches.append(params.get("search"))
        return super().list_page(entity, path, params)


def test_a_reconciliation_asks_once_for_the_listings_with_no_modified(settings: Settings, world: SandboxWorld) -> None:
    """No keyset scan over `modified` meets a record without one: the id scan asks for them by page
    number first, once (a resumed reconciliation that did so does not again). The sandbox holds none."""
    with SandboxServer(world) as server:
        args = (server.base_url, SANDBOX_API_USER, SANDBOX_API_KEY, FAST_RETRIES)
        run_sync(settings, QobrixClient(*args), SyncOptions(page_size=20))
        client = LostAfterLeanPages(*args)
        reconciled = run_sync(settings, client, SyncOptions(page_size=20, reconcile=True))
    assert {entity.entity: entity for entity in reconciled.entities}["properties"].reconciled
    assert client.searches.count("modified == null") == 1
    assert client.searches.index("modified == null") < min(
        index for index, search in enumerate(client.searches) if search and search.startswith("modified >=")
    )


def test_a_reconciliation_while_records_change_deletes_only_what_is_gone(settings: Settings) -> None:
    """Listings edited or created while the id scan pages are not taken for deleted; a reconciliation
    stopped midway lands nothing, and the next sync resumes its scan from the cursor."""
    world = SandboxWorld(seed=23, properties=700)
    options = SyncOptions(page_size=20, max_in_flight=1, reconcile=True)

    def run(client: QobrixClient, **changed: object) -> SyncReport:
        state = SyncState(settings.sync_state_path)
        try:
            selected = select_entities(["properties"])
            return Sync(client=client, landing_root=settings.landing_root, state=state, entities=selected,
                        options=replace(options, **changed)).run()  # fmt: skip
        finally:
            state.close()

    with SandboxServer(world) as server:
        args = (server.base_url, SANDBOX_API_USER, SANDBOX_API_KEY, FAST_RETRIES)
        run(QobrixClient(*args), reconcile=False)
        report = world.advance(changes={"properties": Changes(deletes=5)})
        server.faults.configure(FaultConfig(churn_every=2))
        with pytest.raises(QobrixError, match="connection lost"):
            run(LostAfterLeanPages(*args, lean_pages=12))
        assert not [line for line in landed(settings)["properties"] if line["operation"] == "delete"]
        resumed_client = LostAfterLeanPages(*args)
        resumed = run(resumed_client, reconcile=False, reconcile_every=None)
    assert resumed.resumed and {e.entity: e.reconciled for e in resumed.entities}["properties"]
    assert world.step > 5, "records changed while the id scan paged"
    deleted = {line["record"]["id"] for line in landed(settings)["properties"] if line["operation"] == "delete"}
    assert deleted == set(report.ids("properties", "deleted"))
    keyset = [search for search in resumed_client.searches if search != "modified == null"]
    assert keyset[0] and keyset[0].startswith("modified >= '"), "the resumed scan goes on from its cursor"
    with SandboxServer(world) as server:
        run(QobrixClient(server.base_url, SANDBOX_API_USER, SANDBOX_API_KEY, FAST_RETRIES), reconcile=False)
    versions = latest(landed(settings)["properties"])
    assert set(served(world, "properties")) <= set(versions), "what was created meanwhile lands next time"


def test_nothing_is_landed_twice_in_one_quiet_sync(settings: Settings, sync) -> None:
    report = sync()
    for entity, lines in landed(settings, report.sync_id).items():
        copies = defaultdict(list)
        for line in lines:
            copies[line["record"]["id"]].append(line["record"])
        for versions in copies.values():
            assert all(version == versions[0] for version in versions), entity


def test_faults_and_changes_while_paging_lose_nothing(settings: Settings, sync) -> None:
    world = SandboxWorld(seed=21, properties=900)
    faults = FaultConfig(
        rate=0.15, kinds=("500", "502", "503", "429", "cut", "malformed"), retry_after=0, churn_every=4, seed=3
    )
    with SandboxServer(world, faults=faults) as server:
        run = make_sync(settings, server)
        run(max_in_flight=4)
        assert world.step > 0 and sum(server.faults.seen.values()) > 5
        run(max_in_flight=4)
        server.faults.configure(FaultConfig())
        run(max_in_flight=2)
    assert_everything_landed(settings, world)


def test_errors_outlasting_retries_stop_the_sync_and_a_rerun_resumes(
    settings: Settings, world: SandboxWorld, sandbox: SandboxServer, sync
) -> None:
    sync()
    before = SyncState(settings.sync_state_path).watermarks()
    world.advance()
    sandbox.faults.configure(FaultConfig(rate=1.0, kinds=("503",)))
    with pytest.raises(QobrixError, match=r"entity \S+, page \d+: HTTP 503"):
        sync()
    state = SyncState(settings.sync_state_path)
    assert state.watermarks() == before
    failed = state.recent_syncs(1)[0]
    assert failed.status == "failed" and "HTTP 503" in failed.error
    sandbox.faults.configure(FaultConfig())
    resumed = sync()
    assert resumed.resumed and resumed.sync_id == failed.sync_id
    assert_everything_landed(settings, world)


def test_a_page_that_never_parses_is_landed_raw_and_stops_the_sync(
    settings: Settings, sandbox: SandboxServer, sync
) -> None:
    sandbox.faults.configure(FaultConfig(rate=1.0, kinds=("malformed",)))
    with pytest.raises(MalformedResponseError, match="malformed JSON body"):
        sync(entities=["agents"])
    raw = [line for line in landed(settings)["agents"] if line["operation"] == "malformed"]
    assert len(raw) == 1 and raw[0]["raw"].startswith('{"data":[')
    assert SyncState(settings.sync_state_path).watermarks() == []


def test_defective_records_are_landed_raw_and_counted(settings: Settings, sync) -> None:
    world = SandboxWorld(seed=8, properties=400)
    with SandboxServer(world, faults=FaultConfig(defect_rate=0.1)) as server:
        report = make_sync(settings, server)(full_refresh=True)
    lines = landed(settings)["properties"]
    assert any("x_unexpected_field" in line["record"] for line in lines)
    assert any(line["record"].get("modified") == "31/12/2025 25:61" for line in lines)
    assert {e.entity: e.warnings for e in report.entities}["properties"] > 0
    assert len({line["record"].get("id") for line in lines}) >= world.property_count - 1


def test_test_mode_fetches_n_properties_and_only_what_they_need(settings: Settings, world: SandboxWorld, sync) -> None:
    report = sync(max_properties=25, page_size=7)
    assert report.mode == "test"
    lines = landed(settings)
    for entity, entity_lines in lines.items():
        ids = [line["record"]["id"] for line in entity_lines]
        assert len(ids) == len(set(ids)), f"{entity}: a record was fetched twice"
    pages = landed_pages(settings)
    assert pages and max(len(page_lines(page)) for page in pages) == 7, "pages of the asked size"
    properties = latest(lines["properties"])
    assert len(properties) == 25
    for field_name, target in entities()["properties"].references.items():
        wanted = {r[field_name] for r in properties.values() if r[field_name]}
        assert wanted <= set(latest(lines[target])), field_name
    viewings = latest(lines["property-viewings"])
    assert all(v["property_id"] in properties for v in viewings.values())
    all_viewings = served(world, "property-viewings").values()
    assert {v["id"] for v in all_viewings if v["property_id"] in properties} == set(viewings)
    assert {v["viewing_id"] for v in viewings.values()} <= set(latest(lines["meetings"]))
    assert "opportunities" not in lines
    assert len(latest(lines["contacts"])) < len(served(world, "contacts"))
    assert SyncState(settings.sync_state_path).watermarks() == [], "test mode leaves the CDC watermarks alone"


def test_landing_goes_to_any_fsspec_url() -> None:
    writer = LandingWriter("memory://landing-test", "s1", started=datetime(2026, 1, 1, 1, tzinfo=UTC))
    path = writer.write_page(entities()["agents"], [{"id": "a"}])
    assert path == "/landing-test/agents/2026-01-01/s1/page-000001.jsonl.gz"
    page = gzip.decompress(fsspec.filesystem("memory").cat(path))
    assert orjson.loads(page.splitlines()[0])["record"] == {"id": "a"}
    assert writer.write_page(entities()["agents"], [{"id": "b"}]).endswith("page-000002.jsonl.gz")


# What mutation testing of ingestion/sync.py found unguarded (docs/TESTING.md).


def test_a_resumed_sync_does_not_fetch_an_entity_it_finished_again(settings: Settings, sync) -> None:
    """The stopped sync's finished entities stay finished: only the others are fetched on resume."""
    state = SyncState(settings.sync_state_path)
    state.begin_sync("stopped", "full", ["agents", "users"], None)
    state.start_entity("stopped", "agents")
    state.finish_entity("stopped", "agents")
    state.start_entity("stopped", "users")
    state.fail_sync("stopped", "HTTP 503")
    state.close()
    report = sync(entities=["agents", "users"], full_refresh=True)
    assert report.resumed and report.sync_id == "stopped"
    assert set(landed(settings, "stopped")) == {"users"}


def test_the_report_counts_trashed_records_as_deletes(settings: Settings, world: SandboxWorld, sync) -> None:
    sync(entities=["properties"])
    world.advance(changes={"properties": Changes(trashes=2)})
    report = sync(entities=["properties"])
    [properties] = report.entities
    assert properties.deletes == 2


def test_sync_times_are_utc_whatever_the_machine_s_zone(
    settings: Settings, sync, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    monkeypatch.setenv("TZ", "Asia/Nicosia")
    time.tzset()
    try:
        report = sync(entities=["agents"])
        state = SyncState(settings.sync_state_path)
        [record] = state.recent_syncs(1)
        progress = state.entity_progress(report.sync_id, "agents")
        state.close()
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert report.started.endswith("+00:00") and record.started_at.endswith("+00:00")
    assert progress["max_modified"].endswith("+00:00")


def test_calls_per_1000_properties_keep_one_decimal() -> None:
    report = SyncReport("s", "full", "done", "", http_calls=7, entities=[EntityReport("properties", "full", records=3)])
    assert report.calls_per_1000_properties() == 2333.3


class RecordingClient(QobrixClient):
    """The real client, noting each list request's entity and parameters."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.lists: list[tuple[str, dict]] = []

    def list_page(self, entity: str, path: str, params: dict) -> Page:
        self.lists.append((entity, dict(params)))
        return super().list_page(entity, path, params)


def recorded_sync(
    settings: Settings, server: SandboxServer, entities: list[str], **options: object
) -> list[tuple[str, dict]]:
    client = RecordingClient(server.base_url, SANDBOX_API_USER, SANDBOX_API_KEY, FAST_RETRIES)
    state = SyncState(settings.sync_state_path)
    try:
        Sync(client=client, landing_root=settings.landing_root, state=state, entities=select_entities(entities),
             options=SyncOptions(**options)).run()  # fmt: skip
    finally:
        state.close()
        client.close()
    return client.lists


def test_test_mode_stops_reading_properties_at_its_limit(
    settings: Settings, world: SandboxWorld, sandbox: SandboxServer
) -> None:
    requests_sent = recorded_sync(settings, sandbox, ["properties"], max_properties=7, page_size=7)
    property_pages = [params for entity, params in requests_sent if entity == "properties" and "id" not in str(params)]
    assert world.property_count > 10 * 7
    assert len(property_pages) <= 2, f"{len(property_pages)} pages of properties read for 7"


def test_an_incremental_sync_reads_only_what_changed_since_the_watermark(
    settings: Settings, world: SandboxWorld, sandbox: SandboxServer
) -> None:
    """Its windows and its tail start at the watermark (less the overlap), not at the first record."""
    full = recorded_sync(settings, sandbox, ["properties"], page_size=20)
    world.advance(changes={"properties": Changes(updates=3)})
    incremental = recorded_sync(settings, sandbox, ["properties"], page_size=20)
    pages = lambda sent: [p for entity, p in sent if entity == "properties" and p.get("limit") == 20]  # noqa: E731
    assert len(pages(full)) >= world.property_count // 20
    assert len(pages(incremental)) <= len(pages(full)) // 3


def test_a_window_read_to_its_end_is_recorded_done_and_a_stopped_one_is_not(
    settings: Settings, sandbox: SandboxServer
) -> None:
    """A resumed sync skips the windows its first run finished (their cursor alone would re-read a page)."""
    client = QobrixClient(sandbox.base_url, SANDBOX_API_USER, SANDBOX_API_KEY, FAST_RETRIES)
    state = SyncState(settings.sync_state_path)
    agents = entities()["agents"]
    sync = Sync(client=client, landing_root=settings.landing_root, state=state, entities=[agents])
    sync.sync_id, sync.writer = "s", LandingWriter(settings.landing_root, "s", started=datetime.now(UTC))
    state.begin_sync("s", "full", ["agents"], None)
    state.plan_windows("s", "agents", [(None, None), (None, None)])
    sync._scan_window(Scanner(client, agents, page_size=5), Window(0, None, None))
    sync._stop.set()
    sync._scan_window(Scanner(client, agents, page_size=5), Window(1, None, None))
    assert [done for *_, done in state.windows("s", "agents")] == [True, False]
    state.close()
    client.close()
