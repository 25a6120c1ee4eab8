"""Watch a relayed SSE byte stream for the usage object without re-framing it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from gateway.kernel.context import Usage

_USAGE = b'"usage"'

Event = tuple[bytes, dict[str, Any] | None]  # one raw SSE event, and its JSON (None for [DONE])


class UsageSniffer:
    """Fed raw upstream chunks; remembers the last non-null ``usage`` seen in a complete event."""

    __slots__ = ("_pending", "usage", "chunks")

    def __init__(self) -> None:
        self._pending = b""
        self.usage: Usage | None = None
        self.chunks = 0

    def feed(self, chunk: bytes) -> None:
        self.chunks += 1
        data = self._pending + chunk if self._pending else chunk
        end = data.rfind(b"\n\n")
        if end < 0:
            self._pending = data[-65536:]
            return
        complete, self._pending = data[: end + 2], data[end + 2 :]
        if _USAGE in complete:
            self._scan(complete)

    def _scan(self, complete: bytes) -> None:
        for event in complete.split(b"\n\n"):
            if not _has_usage_object(event):
                continue
            for line in event.split(b"\n"):
                if line.startswith(b"data:"):
                    self._take(line[5:].strip())

    def _take(self, payload: bytes) -> None:
        try:
            doc: Any = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        if isinstance(doc, dict):
            found = Usage.from_json(doc.get("usage"))
            if found is None and isinstance(doc.get("message"), dict):
                found = Usage.from_json(doc["message"].get("usage"))
            if found is not None:
                self.usage = found


def _has_usage_object(event: bytes) -> bool:
    """Cheaply tell ``"usage": {...}`` from ``"usage": null`` (sent in every chunk by some servers)."""
    at = event.find(_USAGE)
    while at >= 0:
        rest = event[at + len(_USAGE) : at + len(_USAGE) + 8].lstrip(b" :")
        if rest.startswith(b"{"):
            return True
        at = event.find(_USAGE, at + 1)
    return False


async def sse_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[Event]:
    """Split relayed bytes into whole SSE events (``data: ...\\n\\n``)."""
    pending = b""
    async for chunk in chunks:
        pending += chunk
        while (end := pending.find(b"\n\n")) >= 0:
            raw, pending = pending[: end + 2], pending[end + 2 :]
            yield raw, _json_of(raw)
    if pending.strip():
        yield pending, _json_of(pending)


def _json_of(raw: bytes) -> dict[str, Any] | None:
    for line in raw.split(b"\n"):
        if line.startswith(b"data:"):
            payload = line[5:].strip()
            if payload == b"[DONE]":
                return None
            try:
                doc = orjson.loads(payload)
            except orjson.JSONDecodeError:
                return None
            return doc if isinstance(doc, dict) else None
    return None
