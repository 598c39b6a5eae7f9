"""Datasets declared as SQL files: a YAML header in a leading block comment, then the Spark SQL body.

    /*
    name: qobrix_silver.agent_source
    kind: auto_cdc
    keys: [id]
    sequence_by: modified
    expectations:
      - {name: id_present, constraint: id IS NOT NULL, on_violation: drop}
    payload:
      agency: string
      agreement_date: date
      commission_1: decimal(18,2)
      id: string
      modified: string
      ref: int
    */
    WITH parsed AS (
      SELECT record_key, record_modified, operation, from_json(payload, {{ payload_schema }}) AS p
      FROM STREAM(qobrix_bronze.agents)
    )
    SELECT
      record_key AS id,
      {{ payload_columns except id, modified }},
      record_modified AS modified
    FROM parsed

One dataset per file, named after it; a new dataset is a new file under `pipelines/`.

`payload` (optional) names each field silver parses from bronze's JSON `payload`, in parse and
select order, with the type silver gives it, once: string, int, boolean, double, date, timestamp,
decimal(p,s), or array<...> / struct<...> of strings (whitespace in a type is ignored, so a long
one may be folded over lines with `>-`). The body refers to what is generated from it with
placeholders (see `pipelines.payload`):

- `{{ payload_schema }}`: the `from_json` schema literal, every field (scalars parsed as text);
- `{{ payload_columns except a, b }}`: one typed select item per field not excepted
  (`try_cast(p.x AS INT) AS x`, `try_to_timestamp(p.x) AS x`, `coalesce(p.x, array()) AS x`;
  a struct gives `p.x.y AS x_y` per inner field), for a body that selects a, b itself;
- `{{ unparsed_fields except a, b }}`: the array of names of the typed fields (not text, not
  nested, not excepted) whose value is there but does not parse.

`changes_of: {entity: <bronze entity>, malformed_also: [<rule>, ...]}` declares the common case of
silver, a table applying a bronze entity's records by id: it stands for the AUTO CDC settings
`RECORD_CHANGES` (a setting the header declares wins) and the record rules (`record_rules`: JSON
record, id present, modification time parses, each with its example) ahead of the header's own
expectations; `malformed_also` names the header's rules a line that is not JSON breaks as well.

`variants` makes the file a template of several datasets alike but for a few values: a list of
mappings, one per dataset, of names to text that `{{ name }}` stands for in the header's values and
in the body, plus optionally `payload:` with the fields only that dataset parses. A template's
fields are parsed in alphabetical order (shared and own merged), and its file is named after the
ending its tables share: `silver_feature.sql` declares `property_feature` and `project_feature`.
"""

import re
from pathlib import Path

import yaml

from conf.files import YAML_LOADER, load_yaml
from conf.mappings import spark_literal
from pipelines.declaration import AutoCdc, Dataset, DeclarationError, Expectation, IncrementalRefresh, Violation
from pipelines.payload import PLACEHOLDER, Payload, fill_placeholders

CDC_KEYS = {
    "keys",
    "sequence_by",
    "apply_as_deletes",
    "column_list",
    "except_column_list",
    "stored_as_scd_type",
    "track_history_column_list",
    "track_history_except_column_list",
}
HEADER_KEYS = {"name", "kind", "comment", "expectations", "incremental", "payload", "changes_of"} | CDC_KEYS
RECORD_CHANGES = {
    "keys": ["id"],
    "sequence_by": "modified",
    "apply_as_deletes": "operation = 'delete'",
    "except_column_list": ["entity", "operation", "is_malformed"],
    "stored_as_scd_type": 1,
}
"""The AUTO CDC settings of a table applying a bronze entity's records by id (`changes_of`)."""


def record_rules(entity: str, malformed_also: list[str]) -> list[dict]:
    """The rules each record of `entity` keeps before it is applied by id, with the example each
    rejects: a line that is not JSON (which breaks the others too, and those in `malformed_also`),
    a line landed as another entity's, an operation other than upsert or delete, no id, a
    modification time that does not parse."""
    other = "agents" if entity != "agents" else "contacts"
    also = ["operation_known", "id_present", "modified_parses", *malformed_also]
    return [
        {
            "name": "payload_is_json_record",
            "constraint": "NOT is_malformed",
            "on_violation": "drop",
            "violates": {"entity": entity, "malformed": True, "also": also},
        },
        {
            "name": "landed_as_this_entity",
            "constraint": f"entity = {spark_literal(entity)}",
            "on_violation": "drop",
            "violates": {"entity": entity, "line": {"entity": other}},
        },
        {
            "name": "operation_known",
            "constraint": "operation IN ('upsert', 'delete')",
            "on_violation": "drop",
            "violates": {"entity": entity, "line": {"operation": "explode"}},
        },
        {
            "name": "id_present",
            "constraint": "id IS NOT NULL",
            "on_violation": "drop",
            "violates": {"entity": entity, "record": {"id": None}},
        },
        {
            "name": "modified_parses",
            "constraint": "modified IS NOT NULL",
            "on_violation": "drop",
            "violates": {"entity": entity, "record": {"modified": "31/12/2025 25:61"}},
        },
    ]


def _with_record_changes(header: dict, path: Path) -> dict:
    """`header` with what `changes_of` stands for spelled out: the record AUTO CDC settings (those the
    header declares win) and the record rules ahead of the header's own expectations."""
    spec = header["changes_of"]
    if (
        not isinstance(spec, dict)
        or not isinstance(spec.get("entity"), str)
        or set(spec) - {"entity", "malformed_also"}
    ):
        raise DeclarationError(f"{path}: changes_of is {{entity: <bronze entity>, malformed_also: [<rule>, ...]}}")
    also = spec.get("malformed_also") or []
    if not isinstance(also, list) or not all(isinstance(rule, str) for rule in also):
        raise DeclarationError(f"{path}: changes_of: malformed_also lists rule names")
    if header.get("kind") != "auto_cdc":
        raise DeclarationError(f"{path}: changes_of declares an AUTO CDC table: kind must be auto_cdc")
    own = list(header.get("expectations") or ())
    unknown = sorted(set(also) - {entry.get("name") for entry in own if isinstance(entry, dict)})
    if unknown:
        raise DeclarationError(f"{path}: changes_of: malformed_also names rules the header does not declare: {unknown}")
    rest = {key: value for key, value in header.items() if key != "changes_of"}
    return {**RECORD_CHANGES, **rest, "expectations": [*record_rules(spec["entity"], also), *own]}


VARIANT_VALUE = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def _tuple(value: object) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _expectation(spec: dict, path: Path) -> Expectation:
    violates = spec.get("violates")
    fields = {key: value for key, value in spec.items() if key != "violates"}
    origin = f"{path}: expectation {fields.get('name')}"
    return Expectation(**fields, violates=Violation.from_spec(violates, origin) if violates is not None else None)


def _keys_declared_twice(node: yaml.Node) -> list[str]:
    """Keys repeated within one mapping anywhere in the header: YAML would keep the last silently."""
    if isinstance(node, yaml.MappingNode):
        keys = [key.value for key, _ in node.value]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        return repeated + [key for _, value in node.value for key in _keys_declared_twice(value)]
    if isinstance(node, yaml.SequenceNode):
        return [key for item in node.value for key in _keys_declared_twice(item)]
    return []


def _read_header(path: Path) -> tuple[dict, str]:
    """The header as data and the body as text."""
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if not stripped.startswith("/*") or "*/" not in stripped:
        raise DeclarationError(f"{path}: a dataset file starts with a /* YAML header */")
    header_text, body = stripped[2:].split("*/", 1)
    try:
        repeated = _keys_declared_twice(yaml.compose(header_text, Loader=YAML_LOADER))
        header = load_yaml(header_text) or {}
    except yaml.YAMLError as error:
        raise DeclarationError(f"{path}: header is not YAML: {error}") from None
    if repeated:
        raise DeclarationError(f"{path}: header declares {', '.join(repeated)} twice")
    return header, body


def _with_values(node: object, values: dict[str, str]) -> object:
    """`node` (header data or body text) with each `{{ name }}` of `values` replaced by its value."""
    if isinstance(node, str):
        return VARIANT_VALUE.sub(lambda match: values.get(match[1], match[0]), node)
    if isinstance(node, dict):
        return {key: _with_values(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [_with_values(item, values) for item in node]
    return node


def _strings(node: object) -> list[str]:
    """Every text value of header data, to find placeholders no variant filled."""
    if isinstance(node, dict):
        return [text for value in node.values() for text in _strings(value)]
    if isinstance(node, list):
        return [text for item in node for text in _strings(item)]
    return [node] if isinstance(node, str) else []


def _variants(header: dict, path: Path) -> list[tuple[dict, dict[str, str]]]:
    """One header per variant, with the values its `{{ name }}`s stand for: the template's header
    with the variant's values filled in and its own payload fields merged in alphabetical order."""
    variants = header.pop("variants")
    if not isinstance(variants, list) or not variants or not all(isinstance(v, dict) for v in variants):
        raise DeclarationError(f"{path}: variants lists one mapping of values per dataset, got {variants!r}")
    filled = []
    for variant in variants:
        own_fields = variant.get("payload") or {}
        values = {name: value for name, value in variant.items() if name != "payload"}
        shared_fields = header.get("payload") or {}
        if not isinstance(own_fields, dict) or not all(isinstance(value, str) for value in values.values()):
            raise DeclarationError(f"{path}: a variant gives text values and a payload mapping, got {variant!r}")
        if not isinstance(shared_fields, dict):
            raise DeclarationError(f"{path}: payload maps each field to its type, got {shared_fields!r}")
        both = sorted(set(shared_fields) & set(own_fields))
        if both:
            raise DeclarationError(f"{path}: payload declares {', '.join(both)} twice (template and variant)")
        merged = {**shared_fields, **own_fields}
        own_header = _with_values(header, values)
        if merged:
            own_header["payload"] = {name: merged[name] for name in sorted(merged)}
        filled.append((own_header, values))
    return filled


def _check_file_name(dataset: Dataset, path: Path, is_template: bool) -> None:
    layer = dataset.schema.rsplit("_", 1)[-1]
    if not is_template and path.stem != f"{layer}_{dataset.table}":
        raise DeclarationError(f"{path}: a dataset file is named after its dataset: {layer}_{dataset.table}.sql")
    if is_template and not (path.stem.startswith(f"{layer}_") and dataset.table.endswith(path.stem[len(layer) + 1 :])):
        raise DeclarationError(f"{path}: a template is named after the ending its tables share, unlike {dataset.name}")


def _dataset(header: dict, body: str, path: Path) -> Dataset:
    unknown = set(header) - HEADER_KEYS
    if unknown:
        raise DeclarationError(f"{path}: unknown header keys {sorted(unknown)}; allowed: {sorted(HEADER_KEYS)}")
    if "changes_of" in header:
        header = _with_record_changes(header, path)
    cdc = None
    if header.get("kind") == "auto_cdc":
        settings = {key: header[key] for key in CDC_KEYS if key in header}
        for key in (
            "keys",
            "column_list",
            "except_column_list",
            "track_history_column_list",
            "track_history_except_column_list",
        ):
            if key in settings:
                settings[key] = _tuple(settings[key])
        try:
            cdc = AutoCdc(**settings)
        except TypeError as error:
            raise DeclarationError(f"{path}: AUTO CDC settings incomplete: {error}") from None
    payload = Payload.from_spec(header["payload"], str(path)) if "payload" in header else None
    try:
        expectations = tuple(_expectation(spec, path) for spec in header.get("expectations") or ())
        dataset = Dataset(
            name=header["name"],
            kind=header["kind"],
            sql=fill_placeholders(body, payload, str(path)).strip(),
            expectations=expectations,
            cdc=cdc,
            incremental=IncrementalRefresh.from_spec(header["incremental"], str(path))
            if "incremental" in header
            else None,
            comment=header.get("comment", ""),
            source_file=path,
        )
    except (KeyError, TypeError) as error:
        raise DeclarationError(f"{path}: header incomplete: {error}") from None
    return dataset


def parse_sql_file(path: Path) -> list[Dataset]:
    """The datasets a file declares: its own, or one per variant of a template."""
    header, body = _read_header(path)
    is_template = "variants" in header
    datasets = []
    for own_header, values in _variants(header, path) if is_template else [(header, {})]:
        unfilled = [match[0] for text in _strings(own_header) for match in PLACEHOLDER.finditer(text)]
        if unfilled:
            raise DeclarationError(f"{path}: placeholders in the header that no variant fills: {', '.join(unfilled)}")
        dataset = _dataset(own_header, _with_values(body, values), path)
        _check_file_name(dataset, path, is_template)
        datasets.append(dataset)
    return datasets


def load_sql_datasets(root: Path) -> list[Dataset]:
    datasets = [dataset for path in sorted(root.glob("**/*.sql")) for dataset in parse_sql_file(path)]
    return sorted(datasets, key=lambda dataset: dataset.name)
