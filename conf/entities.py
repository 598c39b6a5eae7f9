"""The catalogue of Qobrix entities the product lands (data in `entities.yaml`)."""

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

CATALOGUE = Path(__file__).with_name("entities.yaml")


@dataclass(frozen=True)
class Entity:
    name: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    incremental: bool = True


@cache
def entities() -> dict[str, Entity]:
    document = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))
    return {name: Entity(name=name, **spec) for name, spec in document["entities"].items()}


def select_entities(names: list[str] | None) -> list[Entity]:
    """The entities named (all when None), or a ValueError naming the unknown ones."""
    known = entities()
    if not names:
        return list(known.values())
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown entities: {', '.join(unknown)} (known: {', '.join(known)})")
    return [known[name] for name in names]
