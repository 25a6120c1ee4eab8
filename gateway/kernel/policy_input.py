"""The one builder of policy input documents (``llmops.policy/v1``, see ``types.py``).

Every stage that asks the policy engine (authz, RAG, tool calls, routing) builds its input here,
so the document has one shape. The subject comes from the principal; identities add their model
grants as ``subject.models``. Nothing secret goes in: no keys, no prompts.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from gateway.kernel.context import Principal, RequestContext, Route
from gateway.kernel.policy import INPUT_VERSION, Action

ROUTE_ACTIONS: dict[Route, Action] = {
    "chat": "chat",
    "messages": "chat",
    "responses": "chat",
    "completions": "completion",
    "embeddings": "embeddings",
    "images": "image",
    "speech": "audio",
    "transcriptions": "audio",
}
MODALITIES: dict[Route, str] = {
    "chat": "text", "messages": "text", "responses": "text", "completions": "text", "embeddings": "embedding",
    "images": "image", "speech": "audio", "transcriptions": "audio",
}


def subject(principal: Principal | None) -> dict[str, Any]:
    if principal is None:
        return {"tenant": "", "key_id": "", "roles": [], "claims": {}, "models": []}
    return {
        "tenant": principal.tenant,
        "key_id": principal.key_id,
        "roles": list(principal.roles),
        "claims": dict(principal.claims),
        "models": list(principal.models),
    }


def build_document(
    action: Action,
    principal: Principal | None,
    resource: Mapping[str, Any],
    *,
    region: str = "",
    request_id: str = "",
    spend: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """A complete input document for ``action`` on ``resource`` by ``principal``."""
    return {
        "version": INPUT_VERSION,
        "subject": subject(principal),
        "action": action,
        "resource": dict(resource),
        "context": {"region": region, "time": int(time.time()), "spend": dict(spend or {}),
                    "request_id": request_id},
    }


def request_resource(ctx: RequestContext) -> dict[str, Any]:
    """The resource of an API request: model, modality and the tools it asks for; for Responses, the
    stored state it would read (``previous_response_id``, ``conversation``)."""
    resource: dict[str, Any] = {
        "model": "" if ctx.auto else ctx.model,
        "modality": MODALITIES.get(ctx.route, "text"),
        "tools": tool_names(ctx.body.get("tools")),
        "secrets": [],
        "egress": [],
        "vector_stores": [],
    }
    if ctx.route == "responses":
        previous, conversation = ctx.body.get("previous_response_id"), ctx.body.get("conversation")
        if isinstance(conversation, dict):
            conversation = conversation.get("id")
        resource["responses"] = [previous] if isinstance(previous, str) else []
        resource["conversations"] = [conversation] if isinstance(conversation, str) else []
    return resource


def document_for(
    ctx: RequestContext,
    action: Action | None = None,
    resource: Mapping[str, Any] | None = None,
    *,
    region: str = "",
    spend: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The document for ``ctx`` (the route's action and resource unless given)."""
    act = action or ROUTE_ACTIONS.get(ctx.route, "chat")
    res = request_resource(ctx) if resource is None else resource
    return build_document(act, ctx.principal, res, region=region, request_id=ctx.request_id, spend=spend)


def tool_names(tools: Any) -> list[str]:
    """Names of OpenAI-style tools (``{"type": "function", "function": {"name"}}`` or ``{"name"}``)."""
    if not isinstance(tools, list):
        return []
    names: list[str] = []
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        fn = tool.get("function")
        name = fn.get("name") if isinstance(fn, dict) else tool.get("name") or tool.get("type")
        if isinstance(name, str):
            names.append(name)
    return names
