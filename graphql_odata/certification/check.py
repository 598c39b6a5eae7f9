"""One certification self-check of a RESO server, in the order RESO's Data Dictionary tests run:
metadata, then the variation scan, then replication with every payload validated."""

from collections.abc import Callable
from pathlib import Path

from conf.data_dictionary import DataDictionary
from graphql_odata.certification import metadata_checks, variations
from graphql_odata.certification.payloads import PayloadValidator
from graphql_odata.certification.replication import STRATEGIES, TIMESTAMP, replicate
from graphql_odata.certification.report import Finding, Report
from graphql_odata.certification.served_model import ServedEntity, read_metadata
from graphql_odata.certification.server import ResoServer, ServerError

Progress = Callable[[str], None]


def _collect_lookup_values(values: dict[str, set[str]]) -> Callable[[dict], None]:
    """Keeps what a Lookup row lists, by lookup name: each value a payload may carry (its
    LookupValue, or the StandardLookupValue it stands for)."""

    def keep(row: dict) -> None:
        for wire in (row.get("LookupValue"), row.get("StandardLookupValue")):
            if isinstance(row.get("LookupName"), str) and isinstance(wire, str):
                values.setdefault(row["LookupName"], set()).add(wire)

    return keep


def _unstamped(server: ResoServer, resource: str) -> int:
    """Records without a ModificationTimestamp, which no timestamp query reaches."""
    try:
        return server.count(resource, f"{TIMESTAMP} eq null")
    except ServerError:
        return 0


def _replicate(
    server: ResoServer,
    name: str,
    entity: ServedEntity,
    count: int,
    validator: PayloadValidator,
    page_size: int,
    report: Report,
    also_keep: Callable[[dict], None] | None = None,
) -> str | None:
    """Every strategy's replication of one resource, its records validated as the nextLink one reads
    them (and handed to `also_keep`); the nextLink read's error, if any."""
    read_whole_error = None
    strategies = [s for s in STRATEGIES if not s.startswith("Timestamp") or TIMESTAMP in entity.fields]
    for strategy in strategies:
        result = replicate(
            server,
            name,
            strategy,
            lambda record, key=entity.key: tuple(record[k] for k in key),
            count,
            page_size=page_size,
            keep=_both(validator.validate, also_keep) if strategy == "NextLink" else None,
        )
        report.replication.append(result)
        if strategy == "NextLink":
            read_whole_error = result.error
        if result.complete:
            continue
        why = result.error or f"reached {result.unique_records_fetched} distinct records of the {count} $count reports"
        if strategy.startswith("Timestamp") and not result.error and (unstamped := _unstamped(server, name)):
            why += f" ({unstamped} have no {TIMESTAMP}: no timestamp query reaches them)"
        report.add(Finding(f"replication.{strategy}", "failure", why, name))
    return read_whole_error


def _both(first: Callable[[dict], None], second: Callable[[dict], None] | None) -> Callable[[dict], None]:
    if second is None:
        return first

    def keep(record: dict) -> None:
        first(record)
        second(record)

    return keep


def run_check(
    server: ResoServer,
    dd: DataDictionary,
    csdl_schemas: Path,
    *,
    page_size: int = 1000,
    progress: Progress | None = None,
) -> Report:
    """The check's report. Raises `ServerError` when the server's `$metadata` cannot be read at all
    (nothing else can be judged then)."""
    say = progress or (lambda _: None)
    report = Report(server.root, dd.version)
    say("$metadata")
    document = server.metadata()
    for finding in metadata_checks.syntax(document, csdl_schemas):
        report.add(finding)
    try:
        sets = read_metadata(document)
    except ValueError as error:
        report.add(Finding("metadata.read", "failure", str(error)))
        return report
    for finding in metadata_checks.dictionary(sets, dd):
        report.add(finding)

    # Lookup first: its nextLink read also gathers the values the other resources' lookups may carry.
    # Without a Lookup resource to read, lookup values are not checked (the missing resource is its
    # own failure).
    lookup_values: dict[str, set[str]] | None = None
    served_values: dict[tuple[str, str], set[str]] = {}
    for name, entity in sorted(sets.items(), key=lambda item: item[0] != "Lookup"):
        say(name)
        lists_lookups = name == "Lookup" and "LookupName" in entity.fields
        try:
            count = server.count(name)
        except ServerError as error:
            if lists_lookups:
                report.add(Finding("lookup.resource", "failure", f"the Lookup resource cannot be read: {error}", name))
            report.add(Finding("replication.count", "failure", f"cannot count the records: {error}", name))
            continue
        validator = PayloadValidator(entity, lookup_values)
        listed: dict[str, set[str]] = {}
        error = _replicate(
            server, name, entity, count, validator, page_size, report,
            also_keep=_collect_lookup_values(listed) if lists_lookups else None,
        )  # fmt: skip
        if lists_lookups and error:
            report.add(Finding("lookup.resource", "failure", f"the Lookup resource cannot be read: {error}", name))
        elif lists_lookups:
            lookup_values = listed
        for finding in validator.findings():
            report.add(finding)
        served_values.update({(name, field): values for field, values in validator.values.items()})

    say("variations")
    for finding in variations.scan(sets, dd, served_values):
        report.add(finding)
    return report
