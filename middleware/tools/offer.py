"""Which tools of a chat request are server-side, and the request the model actually sees.

A tool is server-side (run by the gateway on a node) when it names a registered tool as either::

    {"type": "llmops_tool", "name": "python"}                 # the explicit extension
    {"type": "function", "function": {"name": "python"}}      # a registered name with no parameters

Anything else (a function tool with its own ``parameters``) is a client-side tool and passes
through untouched. Server-side entries are replaced by the full function definitions.

On ``POST /v1/responses`` function tools are flat (``{"type": "function", "name": "python"}``), and a
registered name with no (or null) ``parameters`` asks for the server-side tool (``flat_server_name``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from middleware.tools.catalog import ToolCatalog, ToolEntry
from middleware.tools.code import for_offer

EXTENSION_TYPE = "llmops_tool"


@dataclass(frozen=True, slots=True)
class Offer:
    server: dict[str, ToolEntry]
    tools: list[Any]  # the rewritten ``tools`` array sent to the model

    def is_server(self, name: str) -> bool:
        return name in self.server


def server_name(tool: Any, catalog: ToolCatalog) -> str | None:
    """The registered tool this entry asks the gateway to run, if any."""
    if not isinstance(tool, dict):
        return None
    if tool.get("type") == EXTENSION_TYPE:
        name = tool.get("name")
    elif tool.get("type") == "function" and isinstance(tool.get("function"), dict):
        fn = tool["function"]
        name = fn.get("name") if "parameters" not in fn else None
    else:
        return None
    return name if isinstance(name, str) and catalog.get(name) is not None else None


def flat_server_name(tool: Any, catalog: ToolCatalog) -> str | None:
    """As ``server_name``, for a tool in the Responses API's flat shape."""
    if not isinstance(tool, dict) or tool.get("type") not in (EXTENSION_TYPE, "function"):
        return None
    if tool["type"] == "function" and tool.get("parameters") is not None:
        return None
    name = tool.get("name")
    return name if isinstance(name, str) and catalog.get(name) is not None else None


def make_offer(tools: Any, catalog: ToolCatalog) -> Offer | None:
    """``None`` when the request offers no server-side tool (the stage then does nothing)."""
    if not isinstance(tools, list):
        return None
    server: dict[str, ToolEntry] = {}
    rewritten: list[Any] = []
    names = [server_name(tool, catalog) for tool in tools]
    offered = [e for e in (catalog.get(n) for n in names if n is not None) if e is not None]
    for tool, name in zip(tools, names, strict=True):
        entry = catalog.get(name) if name is not None else None
        if entry is None:
            rewritten.append(tool)
        elif name not in server:
            server[entry.name] = entry
            rewritten.append(for_offer(entry, offered).spec.openai_schema())
    return Offer(server, rewritten) if server else None


def unknown_extension_tools(tools: Any, catalog: ToolCatalog) -> list[str]:
    """Names in ``llmops_tool`` entries that are not registered (a client error)."""
    if not isinstance(tools, list):
        return []
    return [
        str(t.get("name")) for t in tools
        if isinstance(t, dict) and t.get("type") == EXTENSION_TYPE and server_name(t, catalog) is None
    ]
