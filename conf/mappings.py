"""RESO mapping files (`conf/mappings/*.yaml`): one per gold resource, read by the pipeline and the API.

The same files generate the gold SQL, the OData `$metadata`, the Lookup resource and the
lookup expectations. A field is one of:

- `expression`: Spark SQL over the resource's `from` clause;
- `lookup` + `from` + `values`: a Qobrix code translated to a RESO lookup value (values are
  RESO's legacy names, e.g. `SingleFamilyResidence`; the wire carries the standard display
  name, e.g. `Single Family Residence`, from `conf/reso_dictionary.yaml`); with type
  `Collection(Edm.String)`, `from` is an array and every element is translated;
- `untranslated: <field>`: the codes of that lookup field that have no RESO value, kept
  rather than lost (local `X_` fields only);
- `lookup` + `expression` + `emits`: an expression that yields the legacy names listed;
- `open: true` (lookups DD 2.0 leaves open only): values outside RESO's pass through unchanged
  and the Lookup resource lists them as local values; `values: same` when the source already
  holds the lookup's legacy names (country codes).
"""

from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

from conf.data_dictionary import data_dictionary
from conf.files import load_yaml

MAPPINGS_DIR = Path(__file__).with_name("mappings")
RESO_DICTIONARY = Path(__file__).with_name("reso_dictionary.yaml")
COLLECTION = "Collection(Edm.String)"
QOBRIX_TEXT_LENGTH = 255
"""The length of Qobrix's text fields (its API's `maxLength`, for all but long descriptions and URLs)."""

SPARK_TYPES = {
    "Edm.String": "STRING",
    "Edm.Boolean": "BOOLEAN",
    "Edm.Int32": "INT",
    "Edm.Int64": "BIGINT",
    "Edm.Double": "DOUBLE",
    "Edm.Date": "DATE",
    "Edm.DateTimeOffset": "TIMESTAMP",
    COLLECTION: "ARRAY<STRING>",
}


class MappingError(ValueError):
    """A mapping file is malformed; the message names the file and field."""


def spark_literal(value: object) -> str:
    return _string_literal(str(value))


@cache
def _string_literal(text: str) -> str:
    """Rendered once per text: building the graph quotes thousands of lookup values, many alike. A
    text without control characters is quoted as sqlglot renders it (backslashes and quotes escaped;
    a test holds them equal), without importing sqlglot into an update, nor thousands of renderings."""
    if all(character >= " " and character != "\x7f" for character in text):
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    from sqlglot import exp  # Control characters: sqlglot's own escapes (octal, `\\n`, ...).

    return exp.Literal.string(text).sql(dialect="databricks")


@cache
def _reso_dictionary() -> dict:
    return load_yaml(RESO_DICTIONARY.read_text(encoding="utf-8"))


def reso_lookups() -> dict[str, dict[str, str]]:
    """RESO DD 2.0 lookups: lookup name -> legacy name -> standard display name ({} for an open lookup
    DD 2.0 gives no values, such as City)."""
    return data_dictionary().lookups


def reso_fields(resource: str) -> dict[str, str]:
    """The DD 2.0 fields of a served resource (navigation properties aside): name -> standard display name."""
    return _reso_dictionary()["fields"][resource]


def reso_description(resource: str, field: str) -> str:
    """The Data Dictionary's definition of a standard field ("" for a local field or a resource DD 2.0
    does not define)."""
    return _reso_dictionary()["descriptions"].get(resource, {}).get(field, "")


def reso_lookups_generated_on() -> str:
    """When the Data Dictionary those lookups come from was generated (the Lookup resource's timestamp)."""
    return data_dictionary().generated_on


def display_name(lookup: str, legacy: str) -> str:
    try:
        return reso_lookups()[lookup][legacy]
    except KeyError:
        raise MappingError(f"{legacy!r} is not a RESO DD 2.0 value of lookup {lookup}") from None


@dataclass(frozen=True)
class FieldMapping:
    name: str
    type: str = "Edm.String"
    expression: str | None = None
    lookup: str | None = None
    source: str | None = None
    values: dict[str, str] = field(default_factory=dict)
    untranslated: str | None = None
    emits: tuple[str, ...] = ()
    precision: int | None = None
    scale: int | None = None
    open: bool = False
    max_length: int | None = None
    """The most characters a text value (each element of a list) has, served as `MaxLength`: the
    mapping's `max_length`, else (`_with_length`) DD 2.0's suggested length for a lookup whose values
    are all DD's, else the longer of DD's suggestion and Qobrix's text length."""

    @property
    def is_text(self) -> bool:
        return self.type in ("Edm.String", COLLECTION)

    @property
    def is_collection(self) -> bool:
        return self.type == COLLECTION

    @property
    def is_local(self) -> bool:
        return self.name.startswith("X_")

    @property
    def spark_type(self) -> str:
        if self.type == "Edm.Decimal":
            return f"DECIMAL({self.precision or 18},{self.scale if self.scale is not None else 2})"
        return SPARK_TYPES[self.type]

    @property
    def spark_cast(self) -> str:
        """How gold casts the field: decimals with `try_cast`, so an amount beyond the field's precision
        (a price of a trillion) is served as unknown rather than failing every update until fixed."""
        return "try_cast" if self.type == "Edm.Decimal" else "CAST"

    def legacy_values(self) -> list[str]:
        """The RESO legacy names this field can carry."""
        return sorted(set(self.values.values()) | set(self.emits))

    def translation(self, value_sql: str) -> str:
        """A code's RESO display name; an open lookup keeps codes it cannot translate."""
        changed = {
            code: display_name(self.lookup, legacy)
            for code, legacy in self.values.items()
            if not self.open or display_name(self.lookup, legacy) != code
        }
        if self.open and not changed:
            return value_sql
        cases = " ".join(f"WHEN {spark_literal(code)} THEN {spark_literal(name)}" for code, name in changed.items())
        return f"CASE {value_sql} {cases} ELSE {value_sql if self.open else 'NULL'} END"


@dataclass(frozen=True)
class Navigation:
    """A link the API can `$expand`: rows of `resource` whose `remote` field equals this row's `local` field."""

    name: str
    resource: str
    local: str
    remote: str
    many: bool = False


@dataclass(frozen=True)
class ResourceMapping:
    resource: str
    table: str
    from_clause: str
    key: str
    fields: tuple[FieldMapping, ...]
    path: Path
    description: str = ""
    references: dict[str, str] = field(default_factory=dict)
    """Field -> `Resource.Field` it must resolve to (checked by the integrity suite, `expectations/`)."""
    navigation: tuple[Navigation, ...] = ()
    incremental: dict | None = None
    """How the view refreshes from what changed: `pipelines.declaration.IncrementalRefresh`'s spec."""

    def field(self, name: str) -> FieldMapping:
        return next(f for f in self.fields if f.name == name)

    @property
    def lookup_fields(self) -> tuple[FieldMapping, ...]:
        return tuple(f for f in self.fields if f.lookup)

    def select_sql(self) -> str:
        """The resource as one Spark SQL query: every field cast to its type (`spark_cast`), over the
        `from` clause."""
        columns = ",\n  ".join(
            f"{f.spark_cast}({self.spark_expression(f)} AS {f.spark_type}) AS {f.name}" for f in self.fields
        )
        return f"SELECT\n  {columns}\nFROM {self.from_clause}"

    def spark_expression(self, mapping: FieldMapping) -> str:
        """A field's value as Spark SQL over the resource's `from` clause."""
        if mapping.untranslated:
            translated = self.field(mapping.untranslated)
            codes = ", ".join(spark_literal(code) for code in translated.values)
            if translated.is_collection:
                return f"filter({translated.source}, code -> NOT code IN ({codes}))"
            return f"CASE WHEN {translated.source} IN ({codes}) THEN NULL ELSE {translated.source} END"
        if mapping.expression is not None:
            if mapping.emits:
                legacy = " ".join(
                    f"WHEN {spark_literal(name)} THEN {spark_literal(display_name(mapping.lookup, name))}"
                    for name in mapping.emits
                )
                if mapping.is_collection:
                    return f"transform({mapping.expression}, name -> CASE name {legacy} END)"
                return f"CASE {mapping.expression} {legacy} END"
            return mapping.expression
        if mapping.is_collection:
            translated = f"transform({mapping.source}, code -> {mapping.translation('code')})"
            return f"filter({translated}, value -> value IS NOT NULL)"
        return mapping.translation(mapping.source)


def _field(path: Path, spec: dict) -> FieldMapping:
    name = spec.get("name", "?")
    spec = {("source" if key == "from" else key): value for key, value in spec.items()}
    if spec.get("values") == "same" and spec.get("lookup") in reso_lookups():
        spec["values"] = {legacy: legacy for legacy in reso_lookups()[spec["lookup"]]}
    if not isinstance(spec.get("values", {}), dict):
        raise MappingError(f"{path.name}: field {name}: `values` is a map of Qobrix code to RESO value, or `same`")
    for label, items in (("values", spec.get("values", {})), ("emits", {v: v for v in spec.get("emits", [])})):
        for code, legacy in items.items():
            if isinstance(code, bool) or not isinstance(legacy, str):
                raise MappingError(f"{path.name}: field {name}: {label} {code!r}: {legacy!r} must be text (quote it)")
    if "values" in spec:
        spec["values"] = {str(code): legacy for code, legacy in spec["values"].items()}
    if "emits" in spec:
        spec["emits"] = tuple(spec["emits"])
    try:
        mapping = FieldMapping(**spec)
    except TypeError as error:
        raise MappingError(f"{path.name}: field {name}: {error}") from None
    if mapping.type not in SPARK_TYPES and mapping.type != "Edm.Decimal":
        raise MappingError(f"{path.name}: field {name}: unsupported type {mapping.type}")
    kinds = [mapping.expression is not None, mapping.source is not None, mapping.untranslated is not None]
    if sum(kinds) != 1:
        raise MappingError(f"{path.name}: field {name}: give one of `expression`, `from` + `values`, `untranslated`")
    if mapping.source is not None and not (mapping.values and mapping.lookup):
        raise MappingError(f"{path.name}: field {name}: `from` needs `lookup` and `values`")
    if mapping.emits and not mapping.lookup:
        raise MappingError(f"{path.name}: field {name}: `emits` belongs to a `lookup` field")
    if mapping.lookup:
        if mapping.lookup not in reso_lookups():
            raise MappingError(f"{path.name}: field {name}: {mapping.lookup} is not a RESO DD 2.0 lookup")
        for legacy in mapping.legacy_values():
            try:
                display_name(mapping.lookup, legacy)
            except MappingError as error:
                raise MappingError(f"{path.name}: field {name}: {error}") from None
    if mapping.open and not mapping.lookup:
        raise MappingError(f"{path.name}: field {name}: `open` belongs to a `lookup` field")
    if mapping.untranslated and not mapping.is_local:
        raise MappingError(f"{path.name}: field {name}: untranslated codes go to a local X_ field")
    if mapping.max_length is not None and (
        not mapping.is_text or not isinstance(mapping.max_length, int) or mapping.max_length < 1
    ):
        raise MappingError(f"{path.name}: field {name}: `max_length` is a positive whole number, for a text field")
    return mapping


def _with_length(path: Path, resource: str, mapping: FieldMapping) -> FieldMapping:
    """A text field's `max_length`: a value longer than it would fail a client that trusts the metadata,
    so text that comes from Qobrix keeps Qobrix's length where DD 2.0 suggests a shorter one. (And a
    lookup DD 2.0 locks cannot be `open`.)"""
    standard = data_dictionary().field(resource, mapping.name)
    if mapping.open and standard is not None and standard.lookup_status == "Locked with Enumerations":
        raise MappingError(f"{path.name}: field {mapping.name}: DD 2.0 locks {mapping.lookup}; it cannot be `open`")
    if not mapping.is_text or mapping.max_length is not None:
        return mapping
    suggested = standard.max_length if standard is not None and standard.max_length else 0
    if suggested and mapping.lookup and not mapping.open:
        return replace(mapping, max_length=suggested)
    return replace(mapping, max_length=max(suggested, QOBRIX_TEXT_LENGTH))


def load_mapping(path: Path) -> ResourceMapping:
    document = load_yaml(path.read_text(encoding="utf-8"))
    try:
        fields = tuple(_with_length(path, document["resource"], _field(path, spec)) for spec in document["fields"])
        mapping = ResourceMapping(
            resource=document["resource"],
            table=document["table"],
            from_clause=document["from"].strip(),
            key=document["key"],
            fields=fields,
            path=path,
            description=document.get("description", ""),
            references=dict(document.get("references") or {}),
            navigation=tuple(Navigation(**spec) for spec in document.get("navigation") or ()),
            incremental=document.get("incremental"),
        )
    except (KeyError, TypeError) as error:
        raise MappingError(f"{path.name}: missing {error}") from None
    names = [f.name for f in fields]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise MappingError(f"{path.name}: fields repeat: {duplicates}")
    if mapping.key not in names:
        raise MappingError(f"{path.name}: key {mapping.key} is not one of its fields")
    for spec in fields:
        if spec.untranslated and spec.untranslated not in names:
            raise MappingError(f"{path.name}: field {spec.name}: no field {spec.untranslated} to take codes from")
        if spec.untranslated and mapping.field(spec.untranslated).open:
            raise MappingError(f"{path.name}: field {spec.name}: {spec.untranslated} is open and keeps every code")
    return mapping


def _check_references(mappings: dict[str, ResourceMapping]) -> None:
    for mapping in mappings.values():
        for name, target in mapping.references.items():
            resource, _, target_field = target.partition(".")
            if name not in {f.name for f in mapping.fields}:
                raise MappingError(f"{mapping.path.name}: references: no field {name}")
            if resource not in mappings or target_field not in {f.name for f in mappings[resource].fields}:
                raise MappingError(f"{mapping.path.name}: references: {name} -> {target}: no such resource field")
        for link in mapping.navigation:
            target = mappings.get(link.resource)
            if link.name in {f.name for f in mapping.fields}:
                raise MappingError(f"{mapping.path.name}: navigation {link.name} has the name of a field")
            if link.local not in {f.name for f in mapping.fields}:
                raise MappingError(f"{mapping.path.name}: navigation {link.name}: no field {link.local}")
            if target is None or link.remote not in {f.name for f in target.fields}:
                raise MappingError(
                    f"{mapping.path.name}: navigation {link.name}: no field {link.remote} in {link.resource}"
                )


LOOKUP_TABLE = "reso_gold.lookup"
"""The gold table of the RESO Lookup resource, which gold generates from the lookups the mappings use
(it has no mapping file of its own)."""


@cache
def resource_mappings() -> dict[str, ResourceMapping]:
    """Every gold resource's mapping, by RESO resource name."""
    mappings = {mapping.resource: mapping for mapping in map(load_mapping, sorted(MAPPINGS_DIR.glob("*.yaml")))}
    _check_references(mappings)
    return mappings
