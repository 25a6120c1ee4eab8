"""Sliding-window limits: the contract, and the in-process limiter (the embedded default).

A request hits a set of buckets (e.g. key requests, key tokens, tenant requests, model tokens); it
passes only if every bucket stays within its limit over the last ``window_s`` seconds, and then it is
logged in all of them together. A bucket is a log of hits (time, cost) and their running total: a
limit of N per minute admits at most N in ANY 60 s, with no window edge to cross (a fixed window
admitted 2N in a few seconds around its boundary). A refused request is told when enough of its
bucket will have left the window for it to fit (``reset_s``).

Each admitted hit has an ``entry`` id, by which its token cost is later corrected to the real usage
(``adjust``); a hit that already left the window is not corrected.
"""

from __future__ import annotations

import itertools
import os
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Dimension = Literal["requests", "tokens"]
_MAX_IDLE_LOGS = 10_000  # empty logs kept before they are swept


@dataclass(frozen=True, slots=True)
class Bucket:
    name: str  # e.g. "k:key_1:r": scope, id, dimension
    dimension: Dimension
    limit: int
    cost: int


@dataclass(frozen=True, slots=True)
class Outcome:
    allowed: bool
    counts: tuple[int, ...]  # per bucket, the window's total after the hit (or as found, when refused)
    entry: str  # the hit's id in every bucket's log ("" when refused)
    reset_s: float  # allowed: until the oldest hit leaves a window; refused: until this one would fit
    refused: int = -1  # index of the first bucket over its limit


class Limiter(Protocol):
    async def hit(self, buckets: Sequence[Bucket], window_s: int) -> Outcome: ...

    async def adjust(self, names: Sequence[str], delta: int, entry: str, window_s: int) -> None:
        """Add ``delta`` (may be negative) to hit ``entry`` in the buckets ``names``: reconciles token estimates."""
        ...


class _Log:
    """One bucket's hits in the window, oldest first, and their total."""

    __slots__ = ("costs", "hits", "total")

    def __init__(self) -> None:
        self.hits: deque[tuple[float, str]] = deque()
        self.costs: dict[str, int] = {}
        self.total = 0

    def expire(self, since: float) -> None:
        hits = self.hits
        while hits and hits[0][0] <= since:
            _, entry = hits.popleft()
            self.total -= self.costs.pop(entry, 0)

    def add(self, now: float, entry: str, cost: int) -> None:
        self.hits.append((now, entry))
        self.costs[entry] = cost
        self.total += cost

    def fits_in(self, need: int, now: float, window_s: int) -> float:
        """Seconds until hits worth ``need`` have left the window (a whole window when they never can)."""
        freed = 0
        for at, entry in self.hits:
            freed += self.costs.get(entry, 0)
            if freed >= need:
                return at + window_s - now
        return float(window_s)


class LocalLimiter:
    """Sliding-window logs in this process only: a limit holds per replica."""

    def __init__(self) -> None:
        self._logs: dict[str, _Log] = {}
        self._ids = itertools.count()
        self._prefix = os.urandom(4).hex()

    async def hit(self, buckets: Sequence[Bucket], window_s: int) -> Outcome:
        now = time.time()
        logs = [self._log(b.name) for b in buckets]
        for log in logs:
            log.expire(now - window_s)
        found = tuple(log.total for log in logs)
        for i, (b, log) in enumerate(zip(buckets, logs, strict=True)):
            if found[i] + b.cost > b.limit:
                return Outcome(False, found, "", log.fits_in(found[i] + b.cost - b.limit, now, window_s), i)
        entry = f"{self._prefix}{next(self._ids)}"
        for b, log in zip(buckets, logs, strict=True):
            log.add(now, entry, b.cost)
        reset = min((log.hits[0][0] + window_s - now for log in logs), default=float(window_s))
        return Outcome(True, tuple(log.total for log in logs), entry, reset)

    async def adjust(self, names: Sequence[str], delta: int, entry: str, window_s: int) -> None:
        for name in names:
            log = self._logs.get(name)
            if log is not None and entry in log.costs:
                log.costs[entry] += delta
                log.total += delta

    def _log(self, name: str) -> _Log:
        log = self._logs.get(name)
        if log is None:
            if len(self._logs) >= _MAX_IDLE_LOGS:
                self._logs = {k: v for k, v in self._logs.items() if v.hits}
            log = self._logs[name] = _Log()
        return log
