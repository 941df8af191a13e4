"""Injected faults: which requests the sandbox fails on purpose, and how.

A plan gives each fault kind a rate; every message request draws one uniform number and
falls into at most one kind. "429" and "500" refuse the request. "accept_then_500" and
"timeout" accept it (recorded, delivered, retry key remembered) and then answer 500, or
hang and answer 504: the ambiguous failures that make clients retry, and that a retry
under the same X-Line-Retry-Key must meet as 409.
"""

from __future__ import annotations

import math
import random
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from toolkit.line.limits import Violation

KINDS = ("429", "500", "timeout", "accept_then_500")
OPTIONS = ("latency_ms", "timeout_s", "seed")
DEFAULT_TIMEOUT_S = 10.0
MAX_LATENCY_MS = 60_000
MAX_TIMEOUT_S = 600.0


class FaultPlanError(ValueError):
    def __init__(self, violations: list[Violation]) -> None:
        super().__init__("; ".join(f"{v.property}: {v.message}" for v in violations))
        self.violations = violations


@dataclass(frozen=True)
class FaultPlan:
    rates: dict[str, float] = field(default_factory=dict)
    latency_ms: float = 0.0
    timeout_s: float = DEFAULT_TIMEOUT_S
    seed: int | None = None
    # A new id per POST /_faults: each process reseeds its generator once per plan.
    revision: str = ""

    @property
    def latency_s(self) -> float:
        return self.latency_ms / 1000

    def to_dict(self) -> dict[str, Any]:
        return {**self.rates, "latency_ms": self.latency_ms, "timeout_s": self.timeout_s,
                "seed": self.seed, "revision": self.revision}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> FaultPlan:
        """A stored plan (already validated)."""
        if not data:
            return cls()
        return cls(rates={k: float(data[k]) for k in KINDS if data.get(k)},
                   latency_ms=float(data.get("latency_ms", 0)),
                   timeout_s=float(data.get("timeout_s", DEFAULT_TIMEOUT_S)),
                   seed=data.get("seed"), revision=str(data.get("revision", "")))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def parse_plan(body: Any) -> FaultPlan:
    """Validate a POST /_faults body; `{}` clears every fault."""
    if not isinstance(body, dict):
        raise FaultPlanError([Violation("", "Must be a JSON object")])
    problems = [Violation(k, "Unknown key") for k in body if k not in KINDS + OPTIONS]
    rates: dict[str, float] = {}
    for kind in KINDS:
        if kind in body:
            rate = _number(body[kind])
            if rate is None or not 0 <= rate <= 1:
                problems.append(Violation(kind, "Must be a number from 0 to 1"))
            elif rate:
                rates[kind] = rate
    if sum(rates.values()) > 1 + 1e-9:
        problems.append(Violation("", "The rates must add up to at most 1"))
    latency = _number(body.get("latency_ms", 0))
    if latency is None or not 0 <= latency <= MAX_LATENCY_MS:
        problems.append(Violation("latency_ms", f"Must be a number from 0 to {MAX_LATENCY_MS}"))
    timeout = _number(body.get("timeout_s", DEFAULT_TIMEOUT_S))
    if timeout is None or not 0 < timeout <= MAX_TIMEOUT_S:
        problems.append(Violation("timeout_s", f"Must be a number above 0 and at most {MAX_TIMEOUT_S:g}"))
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        problems.append(Violation("seed", "Must be an integer"))
    if problems:
        raise FaultPlanError(problems)
    return FaultPlan(rates=rates, latency_ms=latency or 0.0, timeout_s=timeout or DEFAULT_TIMEOUT_S,
                     seed=seed, revision=uuid.uuid4().hex)


class FaultInjector:
    """Draws each request's fault from the current plan.

    One generator per process, reseeded whenever the plan changes, so that a seeded plan
    gives the same sequence of faults for the same sequence of requests.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._revision: str | None = None
        self._rng = random.Random()

    def draw(self, plan: FaultPlan) -> str | None:
        if not plan.rates:
            return None
        with self._lock:
            if plan.revision != self._revision:
                self._rng = random.Random(plan.seed)
                self._revision = plan.revision
            roll = self._rng.random()
        edge = 0.0
        for kind in KINDS:
            edge += plan.rates.get(kind, 0.0)
            if roll < edge:
                return kind
        return None
