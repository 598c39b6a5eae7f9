"""The catalogue of Qobrix entities the product lands (data in `entities.yaml`)."""

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from conf.files import load_yaml

CATALOGUE = Path(__file__).with_name("entities.yaml")
LEAN = {"expand": "false", "media": "false"}
"""Every list call asks for lean rows unless the entity says otherwise (the API defaults to both true)."""


@dataclass(frozen=True)
class Parent:
    entity: str
    field: str


@dataclass(frozen=True)
class Entity:
    name: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    incremental: bool = True
    references: dict[str, str] = field(default_factory=dict)
    parent: Parent | None = None
    lookup: bool = False
    media_time: str | None = None

    @property
    def folder(self) -> str:
        """The entity's landing folder: one path segment (`media/categories` -> `media-categories`)."""
        return self.name.replace("/", "-")

    @property
    def table(self) -> str:
        """The entity's SQL-safe name (`property-viewings` -> `property_viewings`)."""
        return self.folder.replace("-", "_")


@cache
def entities() -> dict[str, Entity]:
    document = load_yaml(CATALOGUE.read_text(encoding="utf-8"))
    catalogue = {}
    for name, spec in document["entities"].items():
        parent = spec.pop("parent", None)
        params = {**LEAN, **spec.pop("params", {})}
        catalogue[name] = Entity(name=name, params=params, parent=Parent(**parent) if parent else None, **spec)
    return catalogue


def select_entities(names: list[str] | None) -> list[Entity]:
    """The entities named (all when None), or a ValueError naming the unknown ones."""
    known = entities()
    if not names:
        return list(known.values())
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown entities: {', '.join(unknown)} (known: {', '.join(known)})")
    return [known[name] for name in names]
