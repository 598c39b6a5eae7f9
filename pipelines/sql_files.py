"""Datasets declared as SQL files: a YAML header in a leading block comment, then the Spark SQL body.

    /*
    name: qobrix_silver.property
    kind: auto_cdc
    keys: [id]
    sequence_by: modified
    expectations:
      - {name: id_present, constraint: id IS NOT NULL, on_violation: drop}
    */
    SELECT ... FROM STREAM(qobrix_bronze.properties)

One dataset per file, named after it; a new dataset is a new file under `pipelines/`.
"""

from pathlib import Path

import yaml

from conf.files import load_yaml
from pipelines.declaration import AutoCdc, Dataset, DeclarationError, Expectation, IncrementalRefresh, Violation

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
HEADER_KEYS = {"name", "kind", "comment", "expectations", "incremental"} | CDC_KEYS


def _tuple(value: object) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _expectation(spec: dict, path: Path) -> Expectation:
    violates = spec.get("violates")
    fields = {key: value for key, value in spec.items() if key != "violates"}
    origin = f"{path}: expectation {fields.get('name')}"
    return Expectation(**fields, violates=Violation.from_spec(violates, origin) if violates is not None else None)


def parse_sql_file(path: Path) -> Dataset:
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if not stripped.startswith("/*") or "*/" not in stripped:
        raise DeclarationError(f"{path}: a dataset file starts with a /* YAML header */")
    header_text, body = stripped[2:].split("*/", 1)
    try:
        header = load_yaml(header_text) or {}
    except yaml.YAMLError as error:
        raise DeclarationError(f"{path}: header is not YAML: {error}") from None
    unknown = set(header) - HEADER_KEYS
    if unknown:
        raise DeclarationError(f"{path}: unknown header keys {sorted(unknown)}; allowed: {sorted(HEADER_KEYS)}")
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
    try:
        expectations = tuple(_expectation(spec, path) for spec in header.get("expectations") or ())
        dataset = Dataset(
            name=header["name"],
            kind=header["kind"],
            sql=body.strip(),
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
    expected_stem = f"{dataset.schema.rsplit('_', 1)[-1]}_{dataset.table}"
    if path.stem != expected_stem:
        raise DeclarationError(f"{path}: a dataset file is named after its dataset: {expected_stem}.sql")
    return dataset


def load_sql_datasets(root: Path) -> list[Dataset]:
    return [parse_sql_file(path) for path in sorted(root.glob("**/*.sql"))]
