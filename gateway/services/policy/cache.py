"""Decisions cached by input: an LRU keyed by the canonical JSON of the document, short TTL.

``context.time`` and ``context.request_id`` are left out of the key (a time-based rule is then
right to within the TTL); everything else, spend included, is part of it. A policy reload clears it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import orjson

from gateway.kernel.policy import Decision

VOLATILE = ("time", "request_id")


def cache_key(document: Mapping[str, Any]) -> bytes:
    context = document.get("context")
    if isinstance(context, Mapping):
        document = {**document, "context": {k: v for k, v in context.items() if k not in VOLATILE}}
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


class DecisionCache:
    def __init__(self, size: int, ttl_s: float) -> None:
        self._size = size
        self._ttl_s = ttl_s
        self._entries: OrderedDict[bytes, tuple[Decision, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self._size > 0 and self._ttl_s > 0

    def get(self, key: bytes, now: float) -> Decision | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= now:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: bytes, decision: Decision, now: float) -> None:
        self._entries[key] = (decision, now + self._ttl_s)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
