"""``truncation: "auto"`` on ``POST /v1/responses``: when the input does not fit any context window of
the model, drop items from the beginning of the conversation until it does.

System and developer messages and the last user message are kept; a ``function_call`` goes together
with its ``function_call_output`` (a model must never see one without the other). The size is the
router's own estimate (``needs.responses_needs``: characters / 4, plus ``max_output_tokens``), so what
is kept is exactly what the router will then find a deployment for. When even the kept items do not
fit, the input is left as it is and the router answers with its context-window error.
"""

from __future__ import annotations

from typing import Any

from gateway.kernel.responses import as_items, content_text, is_message

_PINNED_ROLES = frozenset({"system", "developer"})


def truncate_input(body: dict[str, Any], over_by: int) -> bool:
    """Drop the oldest droppable items of ``body["input"]`` worth at least ``over_by`` tokens; whether
    that was possible (the body is changed only then)."""
    items = as_items(body.get("input"))
    last_user = max((i for i, item in enumerate(items) if is_message(item) and item.get("role") == "user"),
                    default=-1)
    dropped: set[int] = set()
    freed = 0
    for i, item in enumerate(items):
        if freed >= over_by:
            break
        if i in dropped or i == last_user or not isinstance(item, dict) or item.get("role") in _PINNED_ROLES:
            continue
        unit = _unit(items, i)
        if last_user in unit:
            continue
        dropped |= unit
        freed += sum(_tokens(items[j]) for j in unit)
    if freed < over_by:
        return False
    body["input"] = [item for i, item in enumerate(items) if i not in dropped]
    return True


def _unit(items: list[Any], at: int) -> set[int]:
    """The item at ``at`` and, for a tool call or its output, the other half of the pair."""
    call_id = items[at].get("call_id")
    if items[at].get("type") not in ("function_call", "function_call_output") or not isinstance(call_id, str):
        return {at}
    return {i for i, item in enumerate(items) if isinstance(item, dict) and item.get("call_id") == call_id
            and item.get("type") in ("function_call", "function_call_output")}


def _tokens(item: Any) -> int:
    return len(content_text(item.get("content"))) // 4 if is_message(item) else 0
