"""A batch input file: JSONL, one request a line, in OpenAI's batch input shape.

``{"custom_id": "...", "method": "POST", "url": "/v1/chat/completions", "body": {...}}``: ``custom_id`` a
non-empty string unique in the file, ``method`` POST, ``url`` one of ``ENDPOINTS``, ``body`` an object.
Any other line is a 400 naming its line number (from 1), and ``param`` says which field.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import orjson

from gateway.kernel.errors import InvalidRequest

ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings", "/v1/responses")
MAX_CUSTOM_ID = 512


class BadLine(InvalidRequest):
    """A line of a batch input file that is not a request; ``line`` from 1."""

    def __init__(self, line: int, message: str, field: str | None) -> None:
        super().__init__(f"Invalid batch input file, line {line}: {message}.",
                         param=f"file.line[{line}].{field}" if field else f"file.line[{line}]",
                         code="invalid_batch_line")
        self.line = line


@dataclass(frozen=True, slots=True)
class InputLine:
    line: int  # from 1, as an editor shows it
    custom_id: str
    url: str
    body: dict[str, Any]
    start: int = 0  # the line's bytes in the file: [start, end)
    end: int = 0


def parse_input(data: bytes, max_lines: int) -> list[InputLine]:
    """Every request of ``data`` (blank lines skipped); ``InvalidRequest`` for the first bad line."""
    out: list[InputLine] = []
    seen: set[str] = set()
    for item in parse_lines(data):
        if item.custom_id in seen:
            raise _bad(item.line, f"'custom_id' {item.custom_id!r} is already used by an earlier line; "
                       "each must be unique", "custom_id")
        seen.add(item.custom_id)
        out.append(item)
        if len(out) > max_lines:
            raise InvalidRequest(f"A batch input file holds at most {max_lines} requests.", param="file")
    if not out:
        raise InvalidRequest("The batch input file has no requests (JSONL: one request a line).", param="file")
    return out


def parse_lines(data: bytes, first_line: int = 1, offset: int = 0) -> Iterator[InputLine]:
    """The requests of ``data``, a whole file or the slice of one that starts at line ``first_line``, byte
    ``offset`` (blank lines skipped, but counted)."""
    start = 0
    for number, raw in enumerate(data.split(b"\n"), start=first_line):
        end = start + len(raw) + 1
        if raw.strip():
            item = parse_line(raw, number)
            yield replace(item, start=offset + start, end=offset + min(end, len(data)))
        start = end


def parse_line(raw: bytes, number: int) -> InputLine:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _bad(number, "not a JSON object", None) from None
    if not isinstance(doc, dict):
        raise _bad(number, "not a JSON object", None)
    custom_id = doc.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id or len(custom_id) > MAX_CUSTOM_ID or "\x00" in custom_id:
        raise _bad(number, f"'custom_id' must be a non-empty string of at most {MAX_CUSTOM_ID} characters",
                   "custom_id")
    if doc.get("method") != "POST":
        raise _bad(number, "'method' must be 'POST'", "method")
    url = doc.get("url")
    if url not in ENDPOINTS:
        raise _bad(number, f"'url' must be one of {', '.join(ENDPOINTS)}", "url")
    body = doc.get("body")
    if not isinstance(body, dict):
        raise _bad(number, "'body' must be a JSON object (the request)", "body")
    unknown = set(doc) - {"custom_id", "method", "url", "body"}
    if unknown:
        raise _bad(number, f"unknown field {sorted(unknown)[0]!r}", sorted(unknown)[0])
    return InputLine(number, custom_id, str(url), body)


def _bad(number: int, message: str, field: str | None) -> BadLine:
    return BadLine(number, message, field)
