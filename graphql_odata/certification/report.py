"""What a certification self-check found, kept the way RESO's tools report it.

Each finding has a severity as RESO's tools give it: a `failure` stops certification; a
`variation` (a local name that reads like a Data Dictionary name) stops it in strict mode; a
`warning` is a SHOULD the server does not meet; a `note` is logged and nothing more (RESO's
Commander logs a length that differs from the suggested one, for example).
"""

from collections import Counter
from dataclasses import asdict, dataclass
from dataclasses import field as default
from datetime import UTC, datetime

SEVERITIES = ("failure", "variation", "warning", "note")


@dataclass(frozen=True)
class Finding:
    rule: str
    """Which check: `metadata.syntax`, `field.type`, `lookup.annotation`, `payload.max_length`, ..."""
    severity: str
    message: str
    resource: str | None = None
    field: str | None = None
    detail: dict = default(default_factory=dict)


@dataclass
class Replication:
    """One resource replicated by one strategy, against the count the server gave for it."""

    resource: str
    strategy: str
    record_count: int
    records_fetched: int = 0
    unique_records_fetched: int = 0
    requests: int = 0
    error: str | None = None

    @property
    def complete(self) -> bool:
        return self.error is None and self.unique_records_fetched == self.record_count


@dataclass
class Report:
    service_root: str
    data_dictionary_version: str
    generated_on: str = default(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    findings: list[Finding] = default(default_factory=list)
    replication: list[Replication] = default(default_factory=list)

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def counts(self) -> Counter:
        return Counter(f.severity for f in self.findings)

    @property
    def passed(self) -> bool:
        counts = self.counts()
        return counts["failure"] == 0 and counts["variation"] == 0

    def to_json(self) -> dict:
        """The report: a summary, then each finding, and the variations and payload errors in the
        shapes of RESO's `data-dictionary-variations.json` and schema-validation summary."""
        counts = self.counts()
        variations: dict[str, list] = {"resources": [], "fields": [], "lookups": []}
        for finding in self.findings:
            if finding.severity == "variation":
                variations[finding.detail["kind"]].append(
                    {k: v for k, v in finding.detail.items() if k != "kind"}
                    | {"resourceName": finding.resource, "fieldName": finding.field}
                )
        payload_errors: dict[str, dict] = {}
        for finding in self.findings:
            if finding.rule.startswith("payload.") and finding.severity == "failure":
                entry = payload_errors.setdefault(finding.detail["summary"], {"resources": {}})
                resource = entry["resources"].setdefault(finding.resource, {"count": 0, "keys": [], "fields": {}})
                resource["count"] += finding.detail.get("count", 1)
                resource["keys"] = sorted(set(resource["keys"]) | set(finding.detail.get("keys", [])))[:20]
                resource["fields"].setdefault(finding.field, {"count": 0})["count"] += finding.detail.get("count", 1)
        return {
            "description": "MLS 2.0 RESO certification self-check",
            "version": self.data_dictionary_version,
            "generatedOn": self.generated_on,
            "serviceRootUri": self.service_root,
            "passed": self.passed,
            "summary": {f"{severity}s": counts[severity] for severity in SEVERITIES},
            "findings": [asdict(finding) for finding in self.findings],
            "variations": variations,
            "replication": [asdict(item) | {"complete": item.complete} for item in self.replication],
            "schemaValidation": {
                "totalErrors": sum(r["count"] for v in payload_errors.values() for r in v["resources"].values()),
                "errors": payload_errors,
            },
        }
