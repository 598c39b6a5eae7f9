"""Validators for Qobrix payloads, built from the OpenAPI component schemas in qobrix_schemas.json.

The spec has three documented quirks, corrected here so that valid payloads pass:
- enums of nullable fields do not list null (in both the 2025 and the 2026 spec), yet
  `nullable: true` / `type: [x, "null"]` say null is allowed;
- `MediaFile.thumbnails` and `User.extra` are typed `string` but carry `properties`:
  they are objects (the 2025 production tables flattened `file.thumbnails.{huge,...}`
  and `extra_{first_name,email,phone_mobile}`).
"""

import copy
import json
from functools import cache
from pathlib import Path

from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

FIXTURE = Path(__file__).with_name("qobrix_schemas.json")
OBJECTS_TYPED_AS_STRING = {("MediaFile", "thumbnails"), ("User", "extra")}


def _corrected(schemas: dict) -> dict:
    schemas = copy.deepcopy(schemas)
    for name, schema in schemas.items():
        for field_name, field_schema in schema.get("properties", {}).items():
            if field_schema.get("nullable") and "enum" in field_schema and None not in field_schema["enum"]:
                field_schema["enum"] = [*field_schema["enum"], None]
            if (name, field_name) in OBJECTS_TYPED_AS_STRING:
                field_schema["type"] = "object"
    return schemas


@cache
def contract() -> dict:
    return json.loads(FIXTURE.read_text())


@cache
def validator(schema_name: str) -> OAS30Validator:
    root = {"components": {"schemas": _corrected(contract()["schemas"])}}
    registry = Registry().with_resource("qobrix.json", Resource.from_contents(root, default_specification=DRAFT4))
    return OAS30Validator({"$ref": f"qobrix.json#/components/schemas/{schema_name}"}, registry=registry)


def schema_of(entity: str) -> str:
    return contract()["entities"][entity]


def errors(schema_name: str, payload: object) -> list[str]:
    return [
        f"{'/'.join(map(str, error.path))}: {error.message[:160]}"
        for error in validator(schema_name).iter_errors(payload)
    ]


def fields_of(schema_name: str) -> set[str]:
    return set(contract()["schemas"][schema_name].get("properties", {}))
