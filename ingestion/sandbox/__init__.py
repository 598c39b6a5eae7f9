"""A local Qobrix API v2 serving deterministic generated records (the product's embedded source)."""

from ingestion.sandbox.server import SANDBOX_API_KEY, SANDBOX_API_USER, BackgroundServer, SandboxServer, create_app
from ingestion.sandbox.world import SandboxWorld

__all__ = ["SANDBOX_API_KEY", "SANDBOX_API_USER", "BackgroundServer", "SandboxServer", "SandboxWorld", "create_app"]
