"""The integrity suites as data (`expectations/suites/*.yaml`): datasets as DuckDB SQL over the
lakehouse, and Great Expectations expectations on them, each with a severity.

A suite file that cannot be used is refused with its suite and expectation named: an unknown
expectation type, arguments the type does not take, a dataset no expectation can find.
"""

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from conf.files import load_yaml
from conf.mappings import MappingError, resource_mappings

SUITES_DIR = Path(__file__).with_name("suites")
SEVERITIES = ("critical", "warning", "info")
TRANSLATE = re.compile(r"\{translate (\w+)\.(\w+) ([\w.]+)\}")


class SuiteError(ValueError):
    """A suite file is malformed; the message names the suite and the expectation."""


@dataclass(frozen=True)
class SuiteExpectation:
    number: int
    dataset: str
    type: str
    kwargs: dict
    severity: str
    key: str | None

    @property
    def label(self) -> str:
        column = self.kwargs.get("column") or ",".join(
            str(self.kwargs[k]) for k in ("column_A", "column_B") if k in self.kwargs
        )
        return f"{self.type}({column})" if column else self.type


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    datasets: dict[str, str]
    expectations: tuple[SuiteExpectation, ...]


def _translated(sql: str, suite: str) -> str:
    """`{translate Resource.Field source}`: the mapping's translation of a Qobrix code, as SQL."""

    def expand(match: re.Match) -> str:
        resource, field, source = match.groups()
        try:
            mapping = resource_mappings()[resource].field(field)
        except (KeyError, StopIteration, MappingError):
            raise SuiteError(f"suite {suite}: no mapped field {resource}.{field} to translate") from None
        return mapping.translation(source)

    return TRANSLATE.sub(expand, sql)


def load_suite(path: Path) -> Suite:
    try:
        document = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise SuiteError(f"suite file {path.name} cannot be read: {error}") from None
    name = document.get("suite", path.stem) if isinstance(document, dict) else path.stem
    if not isinstance(document, dict) or not isinstance(document.get("datasets"), dict):
        raise SuiteError(f"suite {name} ({path.name}): needs `datasets` (name: SQL) and `expectations`")
    datasets = {dataset: _translated(str(sql), name) for dataset, sql in document["datasets"].items()}
    expectations = []
    for number, spec in enumerate(document.get("expectations") or [], start=1):
        where = f"suite {name}, expectation {number}"
        if not isinstance(spec, dict) or not {"dataset", "type"} <= set(spec):
            raise SuiteError(f"{where}: give `dataset`, `type` and `kwargs`")
        if spec["dataset"] not in datasets:
            raise SuiteError(f"{where}: no dataset {spec['dataset']!r} (the suite has {', '.join(datasets)})")
        severity = spec.get("severity", "critical")
        if severity not in SEVERITIES:
            raise SuiteError(f"{where}: severity {severity!r} is not one of {', '.join(SEVERITIES)}")
        unknown = set(spec) - {"dataset", "type", "kwargs", "severity", "key"}
        if unknown:
            raise SuiteError(f"{where}: unknown keys {sorted(unknown)}")
        if not isinstance(spec.get("kwargs") or {}, dict):
            raise SuiteError(f"{where}: `kwargs` is a map of the expectation's arguments")
        expectations.append(
            SuiteExpectation(
                number, spec["dataset"], str(spec["type"]), dict(spec.get("kwargs") or {}), severity, spec.get("key")
            )
        )
    if not expectations:
        raise SuiteError(f"suite {name} ({path.name}): no expectations")
    return Suite(name, str(document.get("description", "")), datasets, tuple(expectations))


@cache
def suites() -> tuple[Suite, ...]:
    return tuple(load_suite(path) for path in sorted(SUITES_DIR.glob("*.yaml")))
