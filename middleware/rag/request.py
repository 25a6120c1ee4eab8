"""What a chat request asks of retrieval: the stores it names, and its last user turn.

Stores come from OpenAI-style ``file_search`` tools, ``llmops.vector_store_ids`` (``ctx.extension``),
or the defaults for the caller's key and tenant (first non-empty source wins, in that order).
"""

from __future__ import annotations

from typing import Any

from gateway.kernel.config.sections.rag import RagSettings
from gateway.kernel.context import RequestContext, tenant_of


def file_search_ids(body: dict[str, Any]) -> list[str]:
    ids: list[str] = []
    for tool in body.get("tools") or ():
        if isinstance(tool, dict) and tool.get("type") == "file_search":
            ids.extend(str(i) for i in tool.get("vector_store_ids") or ())
    return ids


def requested_stores(ctx: RequestContext, settings: RagSettings) -> tuple[str, ...]:
    """Store ids in first-seen order, without changing the body."""
    ids = file_search_ids(ctx.body)
    ids.extend(ctx.extension.vector_store_ids or ())
    if not ids and ctx.principal is not None:
        ids.extend(settings.key_stores.get(ctx.principal.key_id, ()))
    if not ids:
        ids.extend(settings.tenant_stores.get(tenant_of(ctx.principal), ()))
    return tuple(dict.fromkeys(ids))


def strip_file_search(body: dict[str, Any]) -> None:
    """Remove ``file_search`` tools (the gateway serves them); drop ``tools``/``tool_choice`` if none remain."""
    tools = body.get("tools")
    if not isinstance(tools, list):
        return
    kept = [t for t in tools if not (isinstance(t, dict) and t.get("type") == "file_search")]
    if len(kept) == len(tools):
        return
    if kept:
        body["tools"] = kept
        return
    body.pop("tools", None)
    body.pop("tool_choice", None)
    body.pop("parallel_tool_calls", None)


def last_user_text(body: dict[str, Any]) -> str | None:
    for message in reversed(body.get("messages") or ()):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text(message.get("content"))
    return None


def _text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "\n".join(parts) if parts else None
    return None
