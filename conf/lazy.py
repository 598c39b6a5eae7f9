"""Package attributes that load their module on first use (PEP 562): a command that needs none of
a package's heavy modules (a server's, the engine's) starts without them."""

from collections.abc import Callable
from importlib import import_module


def lazy_attributes(package: str, homes: dict[str, str]) -> Callable[[str], object]:
    """A package's module `__getattr__`: each name in `homes` from its module (`package.<home>`)."""

    def attribute(name: str) -> object:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{homes[name]}"), name)

    return attribute
