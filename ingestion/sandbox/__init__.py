"""A local Qobrix API v2 serving deterministic generated records (the product's embedded source)."""

from importlib import import_module

_HOMES = {
    "SANDBOX_API_KEY": "server",
    "SANDBOX_API_USER": "server",
    "BackgroundServer": "server",
    "SandboxServer": "server",
    "create_app": "server",
    "SandboxWorld": "world",
}
__all__ = list(_HOMES)


def __getattr__(name: str) -> object:
    """Names load with their module on first use: the server's (FastAPI, uvicorn) would otherwise load
    with every `mls2` command that only needs the world or the fault settings."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
