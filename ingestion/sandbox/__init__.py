"""A local Qobrix API v2 serving deterministic generated records (the product's embedded source).

Its names load with their module on first use: the server's (FastAPI, uvicorn) would otherwise load
with every `mls2` command that only needs the world or the fault settings.
"""

from conf.lazy import lazy_attributes

_HOMES = {
    "SANDBOX_API_KEY": "server",
    "SANDBOX_API_USER": "server",
    "BackgroundServer": "server",
    "SandboxServer": "server",
    "create_app": "server",
    "SandboxWorld": "world",
}
__all__ = list(_HOMES)
__getattr__ = lazy_attributes(__name__, _HOMES)
