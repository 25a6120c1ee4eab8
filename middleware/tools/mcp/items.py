"""Responses output items for upstream MCP tools (OpenAI's shapes), built from what the agent loop did.

* ``mcp_list_tools``: one per ``{"type": "mcp"}`` tool of the request, the tools offered from that server;
* ``mcp_call``: one per call the gateway made (``output``, or ``error`` with status ``failed``: the
  upstream's error result, or why it did not run);
* ``mcp_approval_request``: a call the model asked for whose tool needs approval (``require_approval``,
  ``always`` unless the request says otherwise): not run; a later request with an
  ``mcp_approval_response`` (``approve: true``) runs it.

A model knows an upstream tool as ``server__tool``; the items name the request's ``server_label`` and the
tool's own name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.kernel.responses import new_id
from middleware.tools.mcp.offer import McpRef
from middleware.tools.trace import CallTrace

NOT_APPROVED = "error: the call was not approved and did not run"


@dataclass(slots=True)
class McpNames:
    """Offered name → (server label, tool name) for the request's ``mcp`` tools, and which need approval."""

    labels: dict[str, tuple[str, str]] = field(default_factory=dict)
    approval: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, refs: list[McpRef]) -> McpNames:
        names = cls()
        for ref in refs:
            for tool in ref.tools:
                names.labels[tool.offered_name] = (ref.label, tool.name)
                if needs_approval(ref.approval, tool.name):
                    names.approval.add(tool.offered_name)
        return names

    def offered(self, label: str, name: str) -> str | None:
        return next((o for o, ln in self.labels.items() if ln == (label, name)), None)


def needs_approval(setting: Any, tool: str) -> bool:
    """``require_approval``: ``always`` (the default), ``never``, or ``{"always"|"never": {"tool_names"}}``."""
    if setting is None or setting == "always":
        return True
    if setting == "never":
        return False
    if isinstance(setting, dict):
        never = (setting.get("never") or {}).get("tool_names")
        if isinstance(never, list) and tool in never:
            return False
        always = (setting.get("always") or {}).get("tool_names")
        return not isinstance(always, list) or tool in always
    return True


def list_tools_item(ref: McpRef) -> dict[str, Any]:
    tools = [{"name": t.name, "description": t.description or None, "input_schema": dict(t.input_schema),
              "annotations": dict(t.annotations) if t.annotations is not None else None} for t in ref.tools]
    return {"id": new_id("mcpl_"), "type": "mcp_list_tools", "server_label": ref.label, "tools": tools,
            "error": None}


def call_item(label: str, name: str, arguments: str, content: str, trace: CallTrace,
              approval_request_id: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": new_id("mcp_"), "type": "mcp_call", "server_label": label, "name": name,
                            "arguments": arguments, "approval_request_id": approval_request_id}
    if trace.status == "ok":
        return {**item, "output": content, "error": None, "status": "completed"}
    error = {"type": "mcp_tool_execution_error", "content": [{"type": "text", "text": content}]}
    return {**item, "output": None, "error": error, "status": "failed"}


def approval_item(label: str, name: str, arguments: str, call_id: str) -> dict[str, Any]:
    return {"id": f"mcpr_{call_id}", "type": "mcp_approval_request", "server_label": label, "name": name,
            "arguments": arguments}


def as_approval(item: dict[str, Any], names: McpNames) -> dict[str, Any]:
    """A handed-back ``function_call`` of a tool that needs approval, as its ``mcp_approval_request``."""
    if item.get("type") != "function_call" or item.get("name") not in names.approval:
        return item
    label, name = names.labels[item["name"]]
    return approval_item(label, name, str(item.get("arguments") or ""), str(item.get("call_id") or new_id("call_")))
