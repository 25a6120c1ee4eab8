"""Pass-through to a backend that speaks the Responses API (``responses: native``) (pure).

The gateway owns the state: the backend gets the whole input (history already prepended), no
``previous_response_id``/``conversation``, ``store: false``, and no ids it has never issued; the
gateway's ``file_search`` tools stay behind (the rag stage served them). What comes back is patched
to echo the request as the client wrote it.
"""

from __future__ import annotations

from typing import Any

from gateway.kernel.responses import ResponseIdentity, as_items
from gateway.services.responses_wire.responses_object import conversation_id, echo_tools
from gateway.services.responses_wire.responses_request import GATEWAY_TOOLS

GATEWAY_FIELDS = frozenset({"previous_response_id", "conversation", "background", "llmops"})
GATEWAY_INCLUDES = frozenset({"file_search_call.results"})


def native_request(body: dict[str, Any]) -> dict[str, Any]:
    out = {key: value for key, value in body.items() if key not in GATEWAY_FIELDS}
    out["store"] = False
    out["input"] = [{k: v for k, v in item.items() if k != "id"} if isinstance(item, dict) else item
                    for item in as_items(body.get("input"))]
    tools = [t for t in body.get("tools") or () if not (isinstance(t, dict) and t.get("type") in GATEWAY_TOOLS)]
    out.pop("tools", None)
    if tools:
        out["tools"] = tools
    include = [i for i in body.get("include") or () if i not in GATEWAY_INCLUDES]
    out.pop("include", None)
    if include:
        out["include"] = include
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in GATEWAY_TOOLS or (not tools and choice is not None):
        out.pop("tool_choice", None)
    return out


def patch(response: dict[str, Any], body: dict[str, Any], identity: ResponseIdentity | None = None) -> dict[str, Any]:
    """The backend's Response, echoing what the gateway kept from it (in place); with the id and
    creation time it already has, if it has them (a background response)."""
    if identity is not None:
        response["id"], response["created_at"] = identity.id, identity.created_at
    response["background"] = body.get("background") is True
    response["previous_response_id"] = body.get("previous_response_id")
    response["store"] = body.get("store") is not False
    response["tools"] = echo_tools(body.get("tools"))
    response["tool_choice"] = body.get("tool_choice") or "auto"
    conversation = conversation_id(body.get("conversation"))
    if conversation is not None:
        response["conversation"] = {"id": conversation}
    else:
        response.pop("conversation", None)
    return response
