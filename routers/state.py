"""Live state of one deployment: load, peak-EWMA latency, circuit breaker, cool-down, health.

Circuit breaker (passive outlier detection)::

    CLOSED --(``failures`` in a row)--> OPEN --(``open_s`` elapsed)--> HALF_OPEN (one probe at a time)
    HALF_OPEN --probe succeeds--> CLOSED        HALF_OPEN --probe fails--> OPEN (open time doubles)

An upstream ``Retry-After`` (or a 429) puts the deployment in a cool-down: it gets no traffic until then.
Active health checks set ``healthy``; an unhealthy deployment gets no traffic either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

CLOSED = 0
OPEN = 1
HALF_OPEN = 2
CIRCUIT_NAMES = ("closed", "open", "half_open")
FAILURE_PENALTY_S = 0.25


class GaugeChild(Protocol):
    def set(self, value: float) -> None: ...


@dataclass(frozen=True, slots=True)
class Tuning:
    failures: int = 5
    open_s: float = 5.0
    max_open_s: float = 60.0
    decay_s: float = 10.0


class DeploymentState:
    """Mutated only on the event loop; every method is O(1) and allocation-free."""

    __slots__ = (
        "tuning",
        "outstanding",
        "ewma",
        "stamp",
        "failures",
        "circuit",
        "open_until",
        "open_s",
        "probing",
        "cooldown_until",
        "healthy",
        "gauge",
    )

    def __init__(self, tuning: Tuning, gauge: GaugeChild | None = None) -> None:
        self.tuning = tuning
        self.outstanding = 0
        self.ewma = 0.0
        self.stamp = 0.0
        self.failures = 0
        self.circuit = CLOSED
        self.open_until = 0.0
        self.open_s = tuning.open_s
        self.probing = False
        self.cooldown_until = 0.0
        self.healthy = True
        self.gauge = gauge

    def available(self, now: float) -> bool:
        if not self.healthy or now < self.cooldown_until:
            return False
        if self.circuit == CLOSED:
            return True
        return not self.probing and (self.circuit == HALF_OPEN or now >= self.open_until)

    def begin(self, now: float) -> None:
        """A request is sent; a non-closed circuit lets it through as the one probe."""
        self.outstanding += 1
        if self.circuit != CLOSED:
            self._set_circuit(HALF_OPEN)
            self.probing = True

    def succeed(self, latency_s: float, now: float) -> None:
        """The deployment answered (for a stream: sent its first chunk)."""
        self._observe(latency_s, now)
        self.failures = 0
        if self.circuit != CLOSED:
            self.ewma = latency_s  # the penalties from before the outage are stale now
            self.probing = False
            self.open_s = self.tuning.open_s
            self._set_circuit(CLOSED)

    def fail(self, now: float, cooldown_s: float = 0.0) -> None:
        # A fast failure must not look like a fast answer (the "black hole"): count it as slow.
        self._observe(FAILURE_PENALTY_S, now)
        self.failures += 1
        if cooldown_s > 0:
            self.cooldown_until = max(self.cooldown_until, now + cooldown_s)
        if self.circuit == HALF_OPEN and self.probing:
            self.probing = False
            self.open_s = min(self.open_s * 2, self.tuning.max_open_s)
            self._open(now)
        elif self.circuit == CLOSED and self.failures >= self.tuning.failures:
            self._open(now)

    def end(self) -> None:
        """The request is over (answered, failed or cancelled)."""
        self.outstanding -= 1
        self.probing = False

    def score(self, now: float) -> float:
        """Peak-EWMA load: expected latency times the queue a new request would join. The latency
        decays while nothing is observed, so a deployment that had one slow answer gets tried again."""
        ewma = self.ewma * math.exp((self.stamp - now) / self.tuning.decay_s) if self.ewma else 0.0
        return (ewma + 0.001) * (self.outstanding + 1)

    def _observe(self, latency_s: float, now: float) -> None:
        if latency_s > self.ewma:
            self.ewma = latency_s
        else:
            w = math.exp(-(now - self.stamp) / self.tuning.decay_s)
            self.ewma = self.ewma * w + latency_s * (1.0 - w)
        self.stamp = now

    def _open(self, now: float) -> None:
        self.open_until = now + self.open_s
        self._set_circuit(OPEN)

    def _set_circuit(self, circuit: int) -> None:
        if circuit != self.circuit:
            self.circuit = circuit
            if self.gauge is not None:
                self.gauge.set(circuit)
