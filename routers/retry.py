"""Retry budget and jittered backoff (Finagle/Envoy style).

Every request deposits ``ratio`` of a retry token; a retry withdraws a whole one. On top of that,
``min_per_s`` retries per second are always allowed, so a quiet gateway can still retry. Under a
real outage this caps the extra load the gateway adds at ``ratio`` of the traffic.
"""

from __future__ import annotations

import random

from gateway.kernel.config.sections.routing import BackoffSettings, RetryBudgetSettings

_MAX_TOKENS = 1000.0


class RetryBudget:
    __slots__ = ("_ratio", "_min_per_s", "_tokens", "_reserve", "_stamp")

    def __init__(self, settings: RetryBudgetSettings) -> None:
        self._ratio = settings.ratio
        self._min_per_s = settings.min_per_s
        self._tokens = 0.0
        self._reserve = settings.min_per_s
        self._stamp = 0.0

    def deposit(self) -> None:
        if self._tokens < _MAX_TOKENS:
            self._tokens += self._ratio

    def withdraw(self, now: float) -> bool:
        """Whether one retry may go now (and spend it)."""
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        self._reserve = min(self._min_per_s, self._reserve + (now - self._stamp) * self._min_per_s)
        self._stamp = now
        if self._reserve >= 1.0:
            self._reserve -= 1.0
            return True
        return False


def backoff_s(settings: BackoffSettings, retry: int, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(max, base * 2**(retry-1))] milliseconds."""
    cap = min(settings.max_ms, settings.base_ms * (1 << min(retry - 1, 16)))
    return rng.random() * cap / 1000.0
