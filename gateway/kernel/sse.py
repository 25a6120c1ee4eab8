"""Server-sent events as the gateway relays and translates them: whole events out of chunks cut
anywhere (``SseSplitter``, ``sse_events``), an event's ``data:`` payload and its JSON object, and a
watcher that picks the usage object out of a relayed stream without re-framing it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from gateway.kernel.context import Usage

_USAGE = b'"usage"'

Event = tuple[bytes, dict[str, Any] | None]  # one raw SSE event, and its JSON (None for [DONE])
DONE = b"[DONE]"


class SseSplitter:
    """Fed raw chunks (cut anywhere); returns the whole events each one completes, with LF line ends."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        data = self._pending + chunk if self._pending else chunk
        held = b""
        if b"\r" in data:  # CRLF or CR line ends (sse-starlette writes CRLF): as LF; a last CR waits for its LF
            if data.endswith(b"\r"):
                data, held = data[:-1], b"\r"
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = data.rfind(b"\n\n")
        if end < 0:
            self._pending = data + held
            return []
        self._pending = data[end + 2 :] + held
        return [event for event in data[:end].split(b"\n\n") if event.strip()]

    def rest(self) -> bytes:
        """What is left unterminated (a stream's last event may lack its blank line); taken once."""
        rest, self._pending = self._pending, b""
        return rest


def data_of(event: bytes) -> bytes | None:
    """The payload of an event's first ``data:`` line, stripped (``DONE`` included); None without one."""
    at = 0 if event.startswith(b"data:") else event.find(b"\ndata:") + 1
    if at <= 0 and not event.startswith(b"data:"):
        return None
    end = event.find(b"\n", at)
    return event[at + 5 : end if end >= 0 else len(event)].strip()


def json_object(payload: bytes | None) -> dict[str, Any] | None:
    """A payload's JSON object; None for ``[DONE]``, junk, or any other JSON value."""
    if not payload or not payload.startswith(b"{"):
        return None
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


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
    return json_object(data_of(raw))
