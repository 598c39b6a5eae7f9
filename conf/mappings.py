"""RESO mapping files (`conf/mappings/*.yaml`): one per gold resource, read by the pipeline and the API.

The same files generate the gold SQL, the OData metadata and the lookup checks.
"""

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml
from sqlglot import exp

MAPPINGS_DIR = Path(__file__).with_name("mappings")

SPARK_TYPES = {
    "Edm.String": "STRING",
    "Edm.Boolean": "BOOLEAN",
    "Edm.Int32": "INT",
    "Edm.Int64": "BIGINT",
    "Edm.Double": "DOUBLE",
    "Edm.Date": "DATE",
    "Edm.DateTimeOffset": "TIMESTAMP",
    "Collection(Edm.String)": "ARRAY<STRING>",
}


class MappingError(ValueError):
    """A mapping file is malformed; the message names the file and field."""


@dataclass(frozen=True)
class FieldMapping:
    name: str
    type: str
    expression: str | None = None
    lookup: str | None = None
    source: str | None = None
    values: dict[str, str] = field(default_factory=dict)
    precision: int | None = None
    scale: int | None = None
    description: str = ""

    @property
    def spark_type(self) -> str:
        if self.type == "Edm.Decimal":
            return f"DECIMAL({self.precision or 18},{self.scale if self.scale is not None else 2})"
        return SPARK_TYPES[self.type]

    @property
    def spark_expression(self) -> str:
        """The field's value as Spark SQL over the source row."""
        if self.expression is not None:
            return self.expression
        cases = " ".join(
            f"WHEN {spark_literal(qobrix)} THEN {spark_literal(reso)}" for qobrix, reso in self.values.items()
        )
        return f"CASE {self.source} {cases} END"


@dataclass(frozen=True)
class ResourceMapping:
    resource: str
    table: str
    source: str
    key: str
    fields: tuple[FieldMapping, ...]
    path: Path

    def field(self, name: str) -> FieldMapping:
        return next(f for f in self.fields if f.name == name)


def spark_literal(value: str) -> str:
    return exp.Literal.string(str(value)).sql(dialect="databricks")


def _field(path: Path, spec: dict) -> FieldMapping:
    name = spec.get("name", "?")
    spec = {("source" if key == "from" else key): value for key, value in spec.items()}
    try:
        mapping = FieldMapping(**spec)
    except TypeError as error:
        raise MappingError(f"{path.name}: field {name}: {error}") from None
    if mapping.type not in SPARK_TYPES and mapping.type != "Edm.Decimal":
        raise MappingError(f"{path.name}: field {name}: unsupported type {mapping.type}")
    if (mapping.expression is None) == (mapping.source is None):
        raise MappingError(f"{path.name}: field {name}: give either `expression` or `from` + `values`")
    if mapping.source is not None and not mapping.values:
        raise MappingError(f"{path.name}: field {name}: `from` needs `values`")
    return mapping


def load_mapping(path: Path) -> ResourceMapping:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    try:
        fields = tuple(_field(path, spec) for spec in document["fields"])
        mapping = ResourceMapping(
            resource=document["resource"],
            table=document["table"],
            source=document["source"],
            key=document["key"],
            fields=fields,
            path=path,
        )
    except (KeyError, TypeError) as error:
        raise MappingError(f"{path.name}: missing {error}") from None
    names = [f.name for f in fields]
    if len(names) != len(set(names)):
        raise MappingError(f"{path.name}: field names repeat")
    if mapping.key not in names:
        raise MappingError(f"{path.name}: key {mapping.key} is not one of its fields")
    return mapping


@cache
def resource_mappings() -> dict[str, ResourceMapping]:
    """Every gold resource's mapping, by RESO resource name."""
    mappings = [load_mapping(path) for path in sorted(MAPPINGS_DIR.glob("*.yaml"))]
    return {mapping.resource: mapping for mapping in mappings}
