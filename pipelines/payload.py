"""A silver dataset's payload fields, each declared once with the type silver gives it.

Bronze keeps a record's JSON text whole; a silver body parses it with `from_json`, casts each field
and, for properties, lists the fields whose value is there but does not parse. All three are
generated from one declaration (a SQL file's `payload:` header, see `pipelines.sql_files`) so a
field's name and type are written once and the three cannot disagree.
"""

import re
from dataclasses import dataclass

from pipelines.declaration import DeclarationError

SCALAR_CASTS = {
    "string": "p.{field}",
    "int": "try_cast(p.{field} AS INT)",
    "boolean": "try_cast(p.{field} AS BOOLEAN)",
    "double": "try_cast(p.{field} AS DOUBLE)",
    "date": "try_cast(p.{field} AS DATE)",
    "timestamp": "try_to_timestamp(p.{field})",
}
DECIMAL = re.compile(r"decimal\((\d+),(\d+)\)")
INNERMOST_NESTED_TYPE = re.compile(r"array<string>|struct<\w+:string(?:,\w+:string)*>")
KNOWN_TYPES = f"{', '.join(SCALAR_CASTS)}, decimal(p,s), array<...> or struct<...> of strings"
PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
PLACEHOLDER_PARTS = re.compile(r"\s*(\w+)(?:\s+except\s+(\w+(?:\s*,\s*\w+)*))?\s*")
GENERATED = ("payload_schema", "payload_columns", "unparsed_fields")


def _is_nested_type(declared: str) -> bool:
    """`array<T>` or `struct<name:T,...>` whose leaves are all strings: folds innermost types to
    `string` until one is left (or something that is not a type is)."""
    folded = declared
    while (further := INNERMOST_NESTED_TYPE.sub("string", folded)) != folded:
        folded = further
    return folded == "string" and declared != "string"


def _top_level_fields(struct_type: str) -> list[str]:
    """The field names of `struct<a:T,b:T>`, without those of structs nested in it."""
    members = struct_type[len("struct<") : -1]
    while (outer := re.sub(r"<[^<>]*>", "", members)) != members:
        members = outer
    return [member.split(":", 1)[0] for member in members.split(",")]


@dataclass(frozen=True)
class PayloadField:
    """A payload field and the type silver gives it (as declared, whitespace removed)."""

    name: str
    type: str

    @property
    def is_nested(self) -> bool:
        return self.type.startswith(("array<", "struct<"))

    @property
    def parsed_as(self) -> str:
        """Its type in the `from_json` schema: scalars are read as text and cast in the select
        list, where a value that does not parse becomes NULL on its own; nested values as declared."""
        return self.type if self.is_nested else "string"

    @property
    def typed(self) -> str:
        """The expression giving a scalar field its type."""
        decimal = DECIMAL.fullmatch(self.type)
        if decimal:
            return f"try_cast(p.{self.name} AS DECIMAL({decimal[1]}, {decimal[2]}))"
        return SCALAR_CASTS[self.type].format(field=self.name)

    def columns(self) -> list[str]:
        """Its select items: an array is never NULL (empty instead), a struct gives one text column
        per field (`extra.email` becomes `extra_email`), a scalar its typed value."""
        if self.type.startswith("array<"):
            return [f"coalesce(p.{self.name}, array()) AS {self.name}"]
        if self.type.startswith("struct<"):
            return [f"p.{self.name}.{inner} AS {self.name}_{inner}" for inner in _top_level_fields(self.type)]
        return [f"{self.typed} AS {self.name}"]

    def unparsed_check(self) -> str | None:
        """An expression naming the field when its value is there but does not parse; None for text."""
        if self.is_nested or self.type == "string":
            return None
        return f"CASE WHEN p.{self.name} IS NOT NULL AND {self.typed} IS NULL THEN '{self.name}' END"


@dataclass(frozen=True)
class Payload:
    """The payload fields silver parses, in `from_json` order (which is also the select order)."""

    fields: tuple[PayloadField, ...]

    @classmethod
    def from_spec(cls, spec: object, origin: str) -> "Payload":
        """From a header's `payload: {field: type, ...}`."""
        if not isinstance(spec, dict) or not spec:
            raise DeclarationError(f"{origin}: payload maps each field to its type, got {spec!r}")
        fields = []
        for name, declared in spec.items():
            if not isinstance(name, str) or not re.fullmatch(r"\w+", name):
                raise DeclarationError(f"{origin}: payload field {name!r} is not a column name")
            type_ = "".join(str(declared).split())
            if not (type_ in SCALAR_CASTS or DECIMAL.fullmatch(type_) or _is_nested_type(type_)):
                raise DeclarationError(
                    f"{origin}: payload field {name}: unknown type {declared!r}; known: {KNOWN_TYPES}"
                )
            fields.append(PayloadField(name, type_))
        return cls(tuple(fields))

    def schema(self) -> str:
        """The `from_json` schema, as a Spark SQL string literal."""
        return "'struct<" + ",".join(f"{field.name}:{field.parsed_as}" for field in self.fields) + ">'"

    def columns(self, excluded: list[str], indent: str) -> str:
        """The typed select items of every field not `excluded`, one a line."""
        items = [item for field in self.fields if field.name not in excluded for item in field.columns()]
        return f",\n{indent}".join(items)

    def unparsed_fields(self, excluded: list[str], indent: str) -> str:
        """An array of the names of the typed fields not `excluded` whose value does not parse."""
        checks = [field.unparsed_check() for field in self.fields if field.name not in excluded]
        listed = f",\n{indent}  ".join(check for check in checks if check)
        return f"filter(array(\n{indent}  {listed}\n{indent}), field -> field IS NOT NULL)"


def fill_placeholders(body: str, payload: Payload | None, origin: str) -> str:
    """`body` with each `{{ payload_schema }}`, `{{ payload_columns [except a, b] }}` and
    `{{ unparsed_fields [except a, b] }}` replaced by what `payload` generates. A list generated
    on several lines continues at the indent of the line the placeholder stands on."""

    def generated(placeholder: re.Match) -> str:
        parts = PLACEHOLDER_PARTS.fullmatch(placeholder[1])
        if not parts or parts[1] not in GENERATED:
            raise DeclarationError(f"{origin}: unknown placeholder {placeholder[0]}; known: {', '.join(GENERATED)}")
        if payload is None:
            raise DeclarationError(f"{origin}: {placeholder[0]} needs a `payload:` in the header")
        excluded = re.split(r"\s*,\s*", parts[2]) if parts[2] else []
        unknown = [name for name in excluded if name not in {field.name for field in payload.fields}]
        if unknown:
            raise DeclarationError(f"{origin}: {placeholder[0]} excepts fields the payload does not declare: {unknown}")
        line_start = body.rfind("\n", 0, placeholder.start()) + 1
        indent = re.match(r"[ \t]*", body[line_start:])[0]
        if parts[1] == "payload_schema":
            if excluded:
                raise DeclarationError(f"{origin}: {placeholder[0]}: the schema parses every field, it takes no except")
            return payload.schema()
        if parts[1] == "payload_columns":
            return payload.columns(excluded, indent)
        return payload.unparsed_fields(excluded, indent)

    return PLACEHOLDER.sub(generated, body)
