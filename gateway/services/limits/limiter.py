"""Fixed-window counters: the contract, and the in-process limiter (the embedded default).

A request hits a set of buckets (e.g. key requests, key tokens, tenant requests, model tokens);
it passes only if every bucket stays within its limit, and then all are incremented together.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Dimension = Literal["requests", "tokens"]


@dataclass(frozen=True, slots=True)
class Bucket:
    name: str  # e.g. "k:key_1:r": scope, id, dimension
    dimension: Dimension
    limit: int
    cost: int


@dataclass(frozen=True, slots=True)
class Outcome:
    allowed: bool
    counts: tuple[int, ...]  # per bucket, after the hit (or as found, when refused)
    window: int
    reset_s: float
    refused: int = -1  # index of the first bucket over its limit


class Limiter(Protocol):
    async def hit(self, buckets: Sequence[Bucket], window_s: int) -> Outcome: ...

    async def adjust(self, names: Sequence[str], delta: int, window: int, window_s: int) -> None:
        """Add ``delta`` (may be negative) to counters of ``window``: reconciles token estimates."""
        ...


def window_of(now: float, window_s: int) -> tuple[int, float]:
    window = int(now // window_s)
    return window, (window + 1) * window_s - now


class LocalLimiter:
    """Counters in this process only: a limit holds per replica."""

    def __init__(self) -> None:
        self._window = -1
        self._counts: dict[str, int] = {}

    async def hit(self, buckets: Sequence[Bucket], window_s: int) -> Outcome:
        window, reset_s = window_of(time.time(), window_s)
        if window != self._window:
            self._window, self._counts = window, {}
        counts = self._counts
        found = tuple(counts.get(b.name, 0) for b in buckets)
        for i, b in enumerate(buckets):
            if found[i] + b.cost > b.limit:
                return Outcome(False, found, window, reset_s, i)
        for b in buckets:
            counts[b.name] = counts.get(b.name, 0) + b.cost
        return Outcome(True, tuple(counts[b.name] for b in buckets), window, reset_s)

    async def adjust(self, names: Sequence[str], delta: int, window: int, window_s: int) -> None:
        if window != self._window:
            return
        for name in names:
            self._counts[name] = self._counts.get(name, 0) + delta
