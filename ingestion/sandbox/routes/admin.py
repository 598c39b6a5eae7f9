"""Admin routes under `/_sandbox` (no credentials): move sandbox time forward, read its state, set faults."""

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Body, Query

from ingestion.sandbox.faults import FaultConfig, FaultConfigError
from ingestion.sandbox.generators.entities import ENTITIES
from ingestion.sandbox.routes.errors import QobrixHTTPError
from ingestion.sandbox.routes.state import Sandbox
from ingestion.sandbox.world import Changes

router = APIRouter(prefix="/_sandbox")


@router.post("/advance", summary="Move sandbox time forward")
def advance(
    sandbox: Sandbox,
    steps: Annotated[int, Query(ge=1, le=10_000)] = 1,
    changes: Annotated[dict[str, dict[str, int]] | None, Body()] = None,
) -> dict:
    try:
        plan = {entity: Changes(**counts) for entity, counts in changes.items()} if changes else None
    except TypeError as error:
        raise QobrixHTTPError(400, f"changes: {error}") from None
    unknown = [entity for entity in (plan or {}) if entity not in ENTITIES]
    if unknown:
        raise QobrixHTTPError(400, f"changes: unknown entities {unknown}")
    report = sandbox.shared.advance(
        steps=steps, changes={entity: asdict(change) for entity, change in plan.items()} if plan else None
    )
    return {"step": report.step, "clock": report.clock.isoformat(), "changed": report.changed}


@router.get("/state", summary="Seed, size, step and clock")
def state(sandbox: Sandbox) -> dict:
    shared = sandbox.shared
    shared.catch_up()
    world = shared.world
    return {
        "seed": world.seed,
        "properties": world.property_count,
        "step": world.step,
        "clock": world.clock.isoformat(),
        "counts": {entity: world.live_count(entity) for entity in ENTITIES},
        "faults_seen": shared.faults.seen,
    }


@router.get("/faults", summary="Current fault settings")
def get_faults(sandbox: Sandbox) -> dict:
    sandbox.shared.catch_up()
    return sandbox.shared.faults.config.public()


@router.put("/faults", summary="Replace fault settings")
def put_faults(settings: Annotated[dict, Body()], sandbox: Sandbox) -> dict:
    try:
        sandbox.shared.configure_faults(FaultConfig(**settings))
    except (TypeError, FaultConfigError) as error:
        raise QobrixHTTPError(400, f"faults: {error}") from None
    return sandbox.shared.faults.config.public()
