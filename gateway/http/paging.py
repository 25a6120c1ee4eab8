"""Query parameters of OpenAI's list endpoints (``limit``, ``order``, ``after``, ``include``) and the list
page they answer with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import QueryParams

from gateway.http import validate as v
from gateway.kernel.errors import InvalidRequest
from gateway.kernel.response_state import Order

INCLUDABLE = frozenset({
    "file_search_call.results", "web_search_call.results", "web_search_call.action.sources",
    "message.input_image.image_url", "computer_call_output.output.image_url", "code_interpreter_call.outputs",
    "reasoning.encrypted_content", "message.output_text.logprobs",
})


@dataclass(frozen=True, slots=True)
class ListQuery:
    after: str | None
    limit: int
    order: Order


def list_query(q: QueryParams, default_order: Order = "desc") -> ListQuery:
    limit = int_param(q.get("limit"), 20, 1, 100, "limit")
    order = q.get("order", default_order)
    if order not in ("asc", "desc"):
        raise InvalidRequest("'order' must be 'asc' or 'desc'.", param="order")
    after = q.get("after")
    if after is not None and not v.ID.fullmatch(after):
        raise InvalidRequest("'after' must be an item id.", param="after")
    include(q)
    return ListQuery(after, limit, "asc" if order == "asc" else "desc")


def include(q: QueryParams) -> tuple[str, ...]:
    """``include`` (``include[]=...`` as the SDKs send it, or repeated): known values only. The gateway
    stores items whole, so each of them is already there."""
    values = (*q.getlist("include"), *q.getlist("include[]"))
    for value in values:
        if value not in INCLUDABLE:
            raise InvalidRequest(f"'include' values must be among {sorted(INCLUDABLE)}.", param="include")
    return values


def int_param(raw: Any, default: int, low: int, high: int, name: str) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError, OverflowError):
        raise InvalidRequest(f"'{name}' must be an integer.", param=name) from None
    if not low <= value <= high:
        raise InvalidRequest(f"'{name}' must be between {low} and {high}.", param=name)
    return value


def list_page(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None, "has_more": has_more}
