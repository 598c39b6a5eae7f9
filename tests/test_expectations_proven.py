"""Every expectation of the declared graph proven by the example that breaks it.

Each rule declares beside itself an example breaking it (`violates:` in a SQL header; generated
with the rule for bronze and gold). For every rule of every dataset, a copy of one small synced and
updated lakehouse takes that example through one update of its dataset and what that dataset reads,
and the action pinned here must follow: `drop` quarantines it under that rule's name (and the rules
it declares it also breaks), an AUTO CDC target fed a landed example keeping its rows as they were;
`warn` keeps it and counts exactly those rules once more than an update without it; `fail` stops the
update naming the rule and publishes nothing. The actions are written out below, so a rule turned
from `drop` to `warn`, a mistyped constraint or a new rule with no example fails here.
"""

import shutil
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from conf.entities import entities
from conf.settings import Settings, load_settings
from ingestion.landing import LandingWriter
from ingestion.sandbox import SandboxServer, SandboxWorld
from pipelines import Dataset, Expectation, UpdateFailed, load_graph, run_update
from pipelines._engine.context import QUARANTINE
from pipelines._engine.lakehouse import Lakehouse
from pipelines.declaration import Graph, Violation, build_graph
from tests.conftest import data_quality, delta_rows, make_sync
from tests.landing_checks import landed, latest

BRONZE_ACTIONS = {"payload_is_json_record": "warn", "record_key_present": "warn", "operation_known": "warn"}
"""Every bronze table's rules: bronze keeps every line and only counts."""

RECORD_RULES = {
    "payload_is_json_record": "drop",
    "landed_as_this_entity": "drop",
    "operation_known": "drop",
    "id_present": "drop",
    "modified_parses": "drop",
}
"""The rules of every silver table applying a Qobrix entity's records by id (`changes_of`)."""

ACTIONS: dict[str, dict[str, str]] = {
    "qobrix_silver.project": {
        **RECORD_RULES,
        "name_present": "drop",
        "coordinates_parse": "warn",
    },
    "qobrix_silver.agent_source": {
        **RECORD_RULES,
        "agent_type_known": "drop",
        "primary_contact_present": "warn",
    },
    "qobrix_silver.user_source": {
        **RECORD_RULES,
        "username_present": "drop",
    },
    "qobrix_silver.contact": {
        **RECORD_RULES,
        "is_company_known": "drop",
        "email_looks_valid": "warn",
    },
    "qobrix_silver.viewing_source": {
        **RECORD_RULES,
        "property_present": "drop",
        "meeting_present": "drop",
    },
    "qobrix_silver.meeting": {
        **RECORD_RULES,
        "times_present": "drop",
        "ends_after_start": "warn",
    },
    "qobrix_silver.opportunity": {
        **RECORD_RULES,
        "contact_present": "warn",
    },
    "qobrix_silver.location": {
        **RECORD_RULES,
        "district_present": "warn",
    },
    "qobrix_silver.property_type": {
        **RECORD_RULES,
        "code_present": "drop",
    },
    "qobrix_silver.property_subtype": {
        **RECORD_RULES,
        "code_present": "drop",
    },
    "qobrix_silver.property_feature": {
        **RECORD_RULES,
        "code_present": "drop",
    },
    "qobrix_silver.project_feature": {
        **RECORD_RULES,
        "code_present": "drop",
    },
    "qobrix_silver.media_category": {
        **RECORD_RULES,
        "name_present": "drop",
    },
    "qobrix_silver.portal_location": {
        "id_present": "drop",
    },
    "qobrix_silver.property": {
        **RECORD_RULES,
        "name_present": "drop",
        "property_type_present": "drop",
        "prices_not_negative": "drop",
        "areas_not_negative": "drop",
        "coordinates_in_range": "warn",
        "status_known": "warn",
        "typed_fields_parse": "drop",
    },
    "qobrix_silver.property_history": {
        "id_present": "drop",
        "modified_parses": "drop",
    },
    "qobrix_silver.agent": {
        "member_key_present": "drop",
        "name_present": "warn",
        "email_looks_valid": "warn",
    },
    "reso_gold.contacts": {
        "ContactKey_present": "drop",
        "modification_timestamp_present": "warn",
        "HomeCountry_is_reso_value": "warn",
        "ContactStatus_is_reso_value": "fail",
        "ContactType_is_reso_value": "fail",
        "Language_is_reso_value": "fail",
    },
    "qobrix_silver.viewing": {
        "id_present": "drop",
        "meeting_found": "drop",
        "ends_after_start": "warn",
    },
    "qobrix_silver.media": {
        "media_id_present": "drop",
        "media_is_this_listings": "drop",
        "property_present": "drop",
        "url_absolute": "warn",
        "category_known": "warn",
    },
    "reso_gold.member": {
        "MemberKey_present": "drop",
        "modification_timestamp_present": "warn",
        "MemberCountry_is_reso_value": "warn",
        "MemberStatus_is_reso_value": "fail",
        "MemberLanguages_is_reso_value": "fail",
    },
    "reso_gold.office": {
        "OfficeKey_present": "drop",
        "modification_timestamp_present": "warn",
        "OfficeCountry_is_reso_value": "warn",
        "OfficeStatus_is_reso_value": "fail",
    },
    "reso_gold.showing_appointment": {
        "ShowingAppointmentKey_present": "drop",
        "modification_timestamp_present": "warn",
        "ShowingAppointmentStatus_is_reso_value": "fail",
        "ShowingAppointmentMethod_is_reso_value": "fail",
    },
    "reso_gold.media": {
        "MediaKey_present": "drop",
        "modification_timestamp_present": "warn",
        "ResourceName_is_reso_value": "fail",
        "MediaCategory_is_reso_value": "fail",
        "MediaType_is_reso_value": "fail",
    },
    "reso_gold.property": {
        "ListingKey_present": "drop",
        "modification_timestamp_present": "warn",
        "StandardStatus_is_reso_value": "fail",
        "PropertyType_is_reso_value": "fail",
        "PropertySubType_is_reso_value": "fail",
        "SpecialListingConditions_is_reso_value": "fail",
        "PropertyCondition_is_reso_value": "fail",
        "LeaseAmountFrequency_is_reso_value": "fail",
        "LeaseTerm_is_reso_value": "fail",
        "Country_is_reso_value": "warn",
        "LivingAreaUnits_is_reso_value": "fail",
        "BuildingAreaUnits_is_reso_value": "fail",
        "LotSizeUnits_is_reso_value": "fail",
        "ParkingFeatures_is_reso_value": "fail",
        "Utilities_is_reso_value": "fail",
        "Furnished_is_reso_value": "fail",
        "PetsAllowed_is_reso_value": "fail",
        "OccupantType_is_reso_value": "fail",
        "View_is_reso_value": "fail",
        "PoolFeatures_is_reso_value": "fail",
        "Heating_is_reso_value": "fail",
        "Cooling_is_reso_value": "fail",
        "Flooring_is_reso_value": "fail",
        "Fencing_is_reso_value": "fail",
        "FireplaceFeatures_is_reso_value": "fail",
        "WaterfrontFeatures_is_reso_value": "fail",
        "PatioAndPorchFeatures_is_reso_value": "fail",
        "OtherStructures_is_reso_value": "fail",
        "AssociationAmenities_is_reso_value": "fail",
        "Appliances_is_reso_value": "fail",
        "CommunityFeatures_is_reso_value": "fail",
        "ExteriorFeatures_is_reso_value": "fail",
        "InteriorFeatures_is_reso_value": "fail",
        "LotFeatures_is_reso_value": "fail",
        "SecurityFeatures_is_reso_value": "fail",
    },
    "reso_gold.lookup": {
        "LookupKey_present": "fail",
    },
}


LATER = "2030-01-01T00:00:00+00:00"
"""The `modified` of a landed example: newer than every baseline version, so AUTO CDC applies it."""


def pinned_action(dataset: str, rule: str) -> str | None:
    if dataset.startswith("qobrix_bronze."):
        return BRONZE_ACTIONS.get(rule)
    return ACTIONS.get(dataset, {}).get(rule)


def declared_rules() -> list[tuple[str, str]]:
    return [(d.name, e.name) for d in load_graph().ordered() for e in d.expectations]


def test_every_declared_rule_is_pinned_here_and_every_pinned_rule_declared() -> None:
    declared = set(declared_rules())
    pinned = {(dataset, rule) for dataset, rules in ACTIONS.items() for rule in rules}
    bronze = {(d, r) for d, r in declared if d.startswith("qobrix_bronze.")}
    assert {d for d, _ in bronze} == {f"qobrix_bronze.{entity.table}" for entity in entities().values()}
    assert {r for _, r in bronze} == set(BRONZE_ACTIONS)
    assert declared - bronze == pinned


@dataclass
class Baseline:
    settings: Settings
    records: dict[str, list[dict]]
    """The latest synced version of every record, by entity, in id order."""


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Baseline:
    settings = load_settings(mls2_data_dir=tmp_path_factory.mktemp("baseline") / "data")
    with SandboxServer(SandboxWorld(seed=3, properties=30)) as server:
        make_sync(settings, server)()
    records = {
        entity: sorted(latest(lines).values(), key=lambda record: str(record["id"]))
        for entity, lines in landed(settings).items()
    }
    run_update(settings.paths)
    return Baseline(settings, records)


def copy_of(baseline: Baseline, root: Path) -> Settings:
    shutil.copytree(baseline.settings.mls2_data_dir, root / "data")
    return load_settings(mls2_data_dir=root / "data")


def reaches(record: object, path: str) -> bool:
    """Whether every step but the last of a dotted path exists in `record`."""
    *steps, _ = path.split(".")
    for step in steps:
        if isinstance(record, list) and step.isdigit() and int(step) < len(record):
            record = record[int(step)]
        elif isinstance(record, dict) and isinstance(record.get(step), (dict, list)):
            record = record[step]
        else:
            return False
    return True


def patched(record: dict, changes: tuple[tuple[str, object], ...]) -> dict:
    """`record` with each dotted path set, and a `modified` newer than any synced unless one is set."""
    result = orjson.loads(orjson.dumps(record))
    if "modified" not in dict(changes):
        result["modified"] = LATER
    for path, value in changes:
        *steps, last = path.split(".")
        target = result
        for step in steps:
            target = target[int(step)] if isinstance(target, list) else target[step]
        target[int(last) if isinstance(target, list) else last] = value
    return result


def base_record(baseline: Baseline, violation: Violation) -> dict:
    """The first synced record of the example's entity that has every field the example sets."""
    candidates = baseline.records[violation.entity]
    return next(r for r in candidates if all(reaches(r, path) for path, _ in violation.record))


def land(settings: Settings, baseline: Baseline, violation: Violation, *, broken: bool) -> None:
    """Land the example (or, when not `broken`, its base record only made newer) as one page."""
    entity = entities()[violation.entity]
    writer = LandingWriter(settings.landing_root, "example", started=datetime.now(UTC))
    if violation.malformed and broken:
        writer.write_lines(entity, f'{{"entity": "{entity.name}", "record": {{"id": "cut\n'.encode())
        return
    record = patched(base_record(baseline, violation), violation.record if broken else ())
    line = {"entity": entity.name, "operation": "upsert", "sync_id": "example", "fetched_at": LATER, "record": record}
    if broken:
        line.update(violation.line)
    writer.write_lines(entity, orjson.dumps(line) + b"\n")


def with_row_replaced(graph: Graph, dataset: Dataset, expectation: Expectation) -> Graph:
    """The graph with one row of `dataset` given the example's values: a row that kept the rule and,
    of those, one breaking the fewest others. Any of equals serves: the checks allow a row to go on
    breaking the warn rules it broke before."""
    overrides = dict(expectation.violates.row)
    kept = ", ".join(["__example", *(f"`{column}`" for column in overrides)])
    replaced = ", ".join(f"CASE WHEN __example THEN {value} ELSE `{c}` END AS `{c}`" for c, value in overrides.items())
    selected = f"* EXCEPT ({kept}), {replaced}"

    def breaks(rule: Expectation) -> str:
        return f"CASE WHEN coalesce(({rule.constraint}), false) THEN 0 ELSE 1 END"

    fewest_broken = " + ".join(breaks(rule) for rule in dataset.expectations)
    sql = (
        f"SELECT {selected} FROM (SELECT *, row_number() OVER (ORDER BY {breaks(expectation)}, {fewest_broken}) = 1 "
        f"AS __example FROM ({dataset.sql}) AS __rows) AS __numbered"
    )
    return build_graph([replace(d, sql=sql) if d.name == dataset.name else d for d in graph.ordered()])


def with_inputs(graph: Graph, name: str) -> list[str]:
    """`name` and every dataset it reads, directly or not: what an update must run to take a landed
    example to it (the rest of the graph reads nothing the checks look at)."""
    selected, pending = set(), [name]
    while pending:
        dataset = graph[pending.pop()]
        if dataset.name not in selected:
            selected.add(dataset.name)
            pending.extend(dataset.depends_on)
    return sorted(selected)


def failures(settings: Settings, update_id: str, dataset: str) -> tuple[dict[str, int], Counter]:
    """Each rule's failed rows in `dataset`'s flow of the update, and the rule lists it quarantined."""
    quality = data_quality(settings, update_id, dataset)
    counts = {e["name"]: e["failed_records"] for e in quality["expectations"]}
    quarantine = Lakehouse(settings.paths.lakehouse).table(QUARANTINE)
    rows = delta_rows(quarantine).to_pylist() if quarantine is not None else []
    quarantined = Counter(
        tuple(row["broken_rules"]) for row in rows if row["update_id"] == update_id and row["dataset"] == dataset
    )
    return counts, quarantined


def rows_of(settings: Settings, name: str) -> list[dict]:
    return sorted(delta_rows(Lakehouse(settings.paths.lakehouse).table(name)).to_pylist(), key=str)


@pytest.mark.parametrize(("dataset_name", "rule"), declared_rules(), ids=[f"{d}:{r}" for d, r in declared_rules()])
def test_the_example_breaking_a_rule_meets_its_pinned_action(
    baseline: Baseline, tmp_path: Path, dataset_name: str, rule: str
) -> None:
    graph = load_graph()
    dataset = graph[dataset_name]
    expectation = next(e for e in dataset.expectations if e.name == rule)
    action = pinned_action(dataset_name, rule)
    assert expectation.on_violation == action, f"declared {expectation.on_violation}, pinned {action}"
    violation = expectation.violates
    assert violation is not None, "no example breaking this rule is declared beside it"
    broken = [e.name for e in dataset.expectations if e.name == rule or e.name in violation.also]
    is_view = dataset.kind == "materialized_view"

    def run(broken_example: bool) -> tuple[Settings, object]:
        settings = copy_of(baseline, tmp_path / ("example" if broken_example else "control"))
        if violation.row:
            if broken_example:
                changed = with_row_replaced(graph, dataset, expectation)
                # A changed view is recomputed; a changed streaming body reads nothing new, so it reads its input again.
                only = {"refresh" if is_view else "full_refresh_selection": [dataset_name]}
                return settings, lambda: run_update(settings.paths, graph=changed, **only)
            return settings, lambda: run_update(settings.paths, full_refresh_selection=[dataset_name])
        land(settings, baseline, violation, broken=broken_example)
        return settings, lambda: run_update(settings.paths, refresh=with_inputs(graph, dataset_name))

    settings, update = run(True)
    if action == "fail":
        published = settings.paths.snapshot_pointer.read_bytes()
        with pytest.raises(UpdateFailed, match=f"{dataset_name}: expectation '{rule}'"):
            update()
        assert settings.paths.snapshot_pointer.read_bytes() == published
        return
    counts, quarantined = failures(settings, update().update_id, dataset_name)
    control_counts, control_quarantined = {}, Counter()
    if is_view or violation.row:
        control, control_update = run(False)
        control_counts, control_quarantined = failures(control, control_update().update_id, dataset_name)
    added = {name: counts[name] - control_counts.get(name, 0) for name in counts}
    unique = {f"{dataset.unique_key}_unique": 0} if dataset.unique_key else {}
    assert added == {e.name: int(e.name in broken) for e in dataset.expectations} | unique
    new_quarantine = quarantined - control_quarantined
    assert not control_quarantined - quarantined, "the example's row was quarantined without it"
    if action == "drop":
        [(entry, count)] = new_quarantine.items()
        # The row may also break warn rules it broke before the example (their counts did not move).
        warns = {e.name for e in dataset.expectations if e.on_violation == "warn"}
        assert count == 1 and set(broken) <= set(entry) and set(entry) - set(broken) <= warns
        if dataset.kind == "auto_cdc" and not violation.row:
            assert rows_of(settings, dataset_name) == rows_of(baseline.settings, dataset_name)
    else:
        assert not new_quarantine
