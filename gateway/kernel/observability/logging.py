"""Structured JSON logs, one object a line, written without the stdlib logging machinery.

The hot path calls ``JsonLog.event``: one ``orjson.dumps`` and one buffered write. Lines go
out when the buffer fills, on ``flush()`` (a periodic task), and at shutdown. Callers pass
only what is safe to log; nothing here ever receives a prompt or a secret.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import IO, Any

import orjson

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


class JsonLog:
    def __init__(self, stream: IO[bytes] | None = None, level: str = "info", *, service: str = "gateway") -> None:
        self._stream = stream if stream is not None else sys.stdout.buffer
        self._threshold = LEVELS[level]
        self._service = service
        self._eager = bool(getattr(self._stream, "isatty", lambda: False)())

    def enabled(self, level: str) -> bool:
        return LEVELS[level] >= self._threshold

    def event(self, level: str, event: str, **fields: Any) -> None:
        if LEVELS[level] < self._threshold:
            return
        record = {"ts": round(time.time(), 6), "level": level, "event": event, "service": self._service}
        record.update(fields)
        self._stream.write(orjson.dumps(record, default=str) + b"\n")
        if self._eager or LEVELS[level] >= 40:
            self.flush()

    def info(self, event: str, **fields: Any) -> None:
        self.event("info", event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self.event("warning", event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self.event("error", event, **fields)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError):
            pass


class _StdlibBridge(logging.Handler):
    """Sends records from libraries (uvicorn, aiohttp) into the same JSON stream."""

    def __init__(self, log: JsonLog) -> None:
        super().__init__()
        self._log = log

    def emit(self, record: logging.LogRecord) -> None:
        level = record.levelname.lower()
        level = level if level in LEVELS else "error"
        fields: dict[str, Any] = {"logger": record.name}
        if record.exc_info and record.exc_info[0] is not None:
            fields["exception"] = record.exc_info[0].__name__
        self._log.event(level, record.getMessage(), **fields)


def bridge_stdlib(log: JsonLog, level: str) -> None:
    """Route the stdlib root logger into ``log`` (done once by the CLI, the process owner)."""
    root = logging.getLogger()
    root.handlers[:] = [_StdlibBridge(log)]
    root.setLevel(LEVELS[level])
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
