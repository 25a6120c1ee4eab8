"""What the Responses endpoint, the chain's stages and the router's backends share about one
``POST /v1/responses`` request (``ctx.route == "responses"``; ``ctx.body`` is the Responses request,
its ``input`` always a list of items once the endpoint has read it).

``RESPONSE``     the final Response object, set by the backend adapter that produced it (translated
                 from chat or passed through) just before its body or terminal stream event goes out;
                 the endpoint stores it (a cached reply has none: the endpoint reads the body).
``FILE_SEARCH``  what the gateway's own file search found (the rag stage sets it), for the adapter to
                 show as a ``file_search_call`` output item and ``file_citation`` annotations.
``IDENTITY``     the id and creation time the Response already has (a background response, stored when
                 it was queued): the adapter uses them instead of minting new ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from gateway.kernel.context import StateKey


@dataclass(frozen=True, slots=True)
class FileSearch:
    queries: tuple[str, ...]
    results: tuple[dict[str, Any], ...]  # file_id, filename, text, score, attributes (OpenAI's result shape)
    include_results: bool = False  # ``include: ["file_search_call.results"]``


@dataclass(frozen=True, slots=True)
class ResponseIdentity:
    id: str
    created_at: int  # unix seconds


RESPONSE: StateKey[dict[str, Any]] = StateKey("responses.response")
FILE_SEARCH: StateKey[FileSearch] = StateKey("responses.file_search")
IDENTITY: StateKey[ResponseIdentity] = StateKey("responses.identity")

TEXT_PARTS = frozenset({"input_text", "output_text", "text", "refusal"})


def new_id(prefix: str) -> str:
    """``resp_…``, ``msg_…``, ``fc_…``: unique, opaque (128 random bits)."""
    return prefix + os.urandom(16).hex()


def as_items(value: Any) -> list[Any]:
    """``input`` as items: a string is one user message."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return list(value) if isinstance(value, list) else []


def content_text(content: Any) -> str:
    """The text of a message's content: a string, or its text parts joined by newlines."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts = [p.get("text") or p.get("refusal") or "" for p in content
             if isinstance(p, dict) and p.get("type") in TEXT_PARTS]
    return "\n".join(t for t in texts if isinstance(t, str) and t)


def is_message(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type", "message") == "message"


def last_user_text(items: list[Any]) -> str | None:
    for item in reversed(items):
        if is_message(item) and item.get("role") == "user":
            return content_text(item.get("content"))
    return None
