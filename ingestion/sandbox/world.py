"""The sandbox's state: a generated base plus the edits made since it started.

Only edits take memory; the base records are rebuilt from their index on demand.
"""

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ingestion.sandbox.generator import HISTORY_END, property_record, rng_for

STEP_DURATION = timedelta(minutes=15)
"""Sandbox time that passes with each `advance` step."""


@dataclass
class Edit:
    version: int
    modified: datetime


@dataclass
class AdvanceReport:
    step: int
    clock: datetime
    updated: list[str] = field(default_factory=list)


class SandboxWorld:
    """Every record the sandbox serves, deterministic from (seed, size, steps advanced)."""

    def __init__(self, *, seed: int, properties: int) -> None:
        if properties < 0:
            raise ValueError(f"properties must be >= 0, got {properties}")
        self.seed = seed
        self.property_count = properties
        self.step = 0
        self.clock = HISTORY_END
        self._edits: dict[int, Edit] = {}
        self._lock = threading.Lock()

    def property(self, index: int) -> dict:
        edit = self._edits.get(index)
        if edit is None:
            return property_record(self.seed, index, self.property_count)
        return property_record(self.seed, index, self.property_count, edit.version, edit.modified)

    def properties_page(self, page: int, limit: int) -> list[dict]:
        """Page `page` (from 1) of properties in `ref` order."""
        start = (page - 1) * limit
        stop = min(start + limit, self.property_count)
        with self._lock:
            return [self.property(index) for index in range(start, stop)]

    def advance(self, *, updates: int = 10) -> AdvanceReport:
        """One step of sandbox time: `updates` properties get a new price and status."""
        with self._lock:
            self.step += 1
            self.clock += STEP_DURATION
            report = AdvanceReport(step=self.step, clock=self.clock)
            if self.property_count == 0:
                return report
            rng = rng_for(self.seed, "advance", self.step)
            for index in rng.sample(range(self.property_count), min(updates, self.property_count)):
                previous = self._edits.get(index)
                self._edits[index] = Edit(version=(previous.version if previous else 0) + 1, modified=self.clock)
                report.updated.append(self.property(index)["id"])
            return report
