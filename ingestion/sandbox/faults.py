"""Faults on demand: what a real Qobrix instance and the network between do to a client.

Transient faults (`kinds`) hit a fraction `rate` of API requests, drawn from a seeded
sequence. Record defects (`defect_rate`) are permanent: the same records are always
served with a missing required field, an unexpected field or a value of the wrong type.
`churn_every` makes the data change while a client is paging.
"""

import threading
from dataclasses import asdict, dataclass

from ingestion.sandbox.identity import rng_for, text_key, unit

TRANSIENT_KINDS = ("500", "502", "503", "429", "slow", "cut", "malformed")
DEFECT_KINDS = ("missing_required", "unexpected_field", "wrong_type", "bad_timestamp")
REQUIRED_FIELDS = {
    "properties": "name", "agents": "agent_type", "users": "username", "contacts": "is_company",
    "property-viewings": "property_id", "meetings": "start_date", "opportunities": "status", "projects": "name",
}  # fmt: skip


class FaultConfigError(ValueError):
    """A fault setting is out of range or names an unknown fault."""


@dataclass
class FaultConfig:
    rate: float = 0.0
    """Fraction of API requests that get one of `kinds`."""
    kinds: tuple[str, ...] = TRANSIENT_KINDS
    retry_after: float = 1.0
    """Seconds a 429 asks the client to wait (Retry-After)."""
    slow_seconds: float = 3.0
    """How long a slow response stalls before answering."""
    defect_rate: float = 0.0
    """Fraction of records served with a permanent defect."""
    churn_every: int = 0
    """Every N-th list request first advances the sandbox one small step (0: never)."""
    seed: int = 0

    def validate(self) -> "FaultConfig":
        self.kinds = tuple(self.kinds)
        unknown = [kind for kind in self.kinds if kind not in TRANSIENT_KINDS]
        if unknown:
            raise FaultConfigError(f"unknown fault kinds {unknown}; known: {', '.join(TRANSIENT_KINDS)}")
        for name in ("rate", "defect_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise FaultConfigError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        if self.retry_after < 0 or self.slow_seconds < 0 or self.churn_every < 0:
            raise FaultConfigError("retry_after, slow_seconds and churn_every must not be negative")
        if self.rate > 0 and not self.kinds:
            raise FaultConfigError("a fault rate needs at least one fault kind")
        return self

    def public(self) -> dict:
        return asdict(self)


class Faults:
    """Draws faults for requests, in a sequence fixed by the seed."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config.validate()
            self._requests = 0
            self._lists = 0
            self.seen: dict[str, int] = {}
            self._key = text_key("faults", config.seed)

    def draw(self) -> str | None:
        """The fault for the next API request, if any."""
        with self._lock:
            self._requests += 1
            config = self.config
            if config.rate <= 0 or unit(self._key, self._requests) >= config.rate:
                return None
            kind = rng_for(self._key, self._requests).choice(config.kinds)
            self.seen[kind] = self.seen.get(kind, 0) + 1
            return kind

    def stall(self) -> None:
        """A slow response's wait, cut short once a `SandboxServer` stops: a stopping server waits for
        the responses in flight, and would otherwise wait out every stall. (`mls2 sandbox serve
        --workers N` stops its worker processes, whose stalls run out their seconds.)"""
        self._stopping.wait(self.config.slow_seconds)

    def stop_stalls(self) -> None:
        self._stopping.set()

    def churn_due(self) -> bool:
        with self._lock:
            self._lists += 1
            return self.config.churn_every > 0 and self._lists % self.config.churn_every == 0

    def is_defective(self, entity: str, record_id: str) -> bool:
        rate = self.config.defect_rate
        return rate > 0 and unit(text_key("defect", entity, record_id), 0) < rate

    def defect(self, entity: str, record: dict) -> dict:
        """The record as served: with its permanent defect when it is one of the defective ones."""
        record_id = str(record.get("id"))
        if not self.is_defective(entity, record_id):
            return record
        kind = DEFECT_KINDS[int(unit(text_key("defect-kind", record_id), 0) * len(DEFECT_KINDS))]
        damaged = dict(record)
        if kind == "missing_required":
            damaged.pop(REQUIRED_FIELDS.get(entity, "id"), None)
        elif kind == "unexpected_field":
            damaged["x_unexpected_field"] = {"note": "added by a Qobrix upgrade", "level": 3}
        elif kind == "wrong_type":
            numeric = next(
                (k for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)), None
            )
            damaged[numeric or "id"] = "n/a"
        else:
            damaged["modified"] = "31/12/2025 25:61"
        return damaged
