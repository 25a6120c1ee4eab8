"""Upstream MCP tools named in a request, resolved for the tools stage.

A request names them as server-side tools::

    {"type": "llmops_tool", "name": "everything__echo"}                          # one tool
    {"type": "mcp", "server_label": "everything", "allowed_tools": ["echo"]}     # a server's tools

``server_label`` (or ``server_url``, when it is a registered server's url) must name a registered server:
any other URL is refused (the gateway does not connect to servers a caller names). ``allowed_tools`` is a
list of names or ``{"tool_names": [...], "read_only": bool}``. A server's tools are its listing for this
caller (``McpRegistry.tools``). The ``mcp`` entries become one ``llmops_tool`` entry per tool, so the
offer (``offer.py``) treats them like any registered tool.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway.kernel.config.sections.mcp import McpServer
from gateway.kernel.context import RequestContext
from gateway.kernel.errors import InvalidRequest, UpstreamError
from gateway.kernel.mcp import SEPARATOR, UpstreamTool
from middleware.tools.catalog import ToolEntry, mcp_entry
from middleware.tools.mcp.registry import McpRegistry, McpUnavailable
from middleware.tools.offer import EXTENSION_TYPE

MCP_TYPE = "mcp"
T = TypeVar("T")


@dataclass(slots=True)
class McpRef:
    """One ``{"type": "mcp"}`` entry, resolved: its label, server and the tools it offers."""

    label: str
    server: McpServer
    tools: list[UpstreamTool]
    approval: Any = None  # ``require_approval`` as sent


@dataclass(slots=True)
class Resolved:
    tools: list[Any]  # the request's tools, ``mcp`` entries expanded to ``llmops_tool`` entries
    entries: dict[str, ToolEntry] = field(default_factory=dict)  # offered name -> entry
    refs: list[McpRef] = field(default_factory=list)


async def resolve(ctx: RequestContext, tools: Any, registry: McpRegistry | None, deadline: float) -> Resolved | None:
    """``None`` when the request names no upstream MCP tool."""
    if not isinstance(tools, list) or registry is None or not _names_mcp(tools):
        return None
    out = Resolved([])
    for index, tool in enumerate(tools):
        if isinstance(tool, dict) and tool.get("type") == MCP_TYPE:
            ref = await _server_ref(ctx, tool, index, registry, deadline)
            out.refs.append(ref)
            for t in ref.tools:
                out.entries[t.offered_name] = mcp_entry(ref.server, t)
                out.tools.append({"type": EXTENSION_TYPE, "name": t.offered_name})
        elif _single(tool):
            found = await _one(ctx, tool["name"], registry, deadline)
            if found is not None:
                out.entries[found.name] = found
            out.tools.append(tool)
        else:
            out.tools.append(tool)
    return out


def _names_mcp(tools: list[Any]) -> bool:
    return any(isinstance(t, dict) and (t.get("type") == MCP_TYPE or _single(t)) for t in tools)


def _single(tool: Any) -> bool:
    return (isinstance(tool, dict) and tool.get("type") == EXTENSION_TYPE and isinstance(tool.get("name"), str)
            and SEPARATOR in tool["name"])


async def _one(ctx: RequestContext, name: str, registry: McpRegistry, deadline: float) -> ToolEntry | None:
    server = await registry.server(name.partition(SEPARATOR)[0])
    if server is None:
        return None
    tool = await _guarded(registry.tool(ctx, name, deadline))
    return mcp_entry(server, tool) if tool is not None else None


async def _server_ref(ctx: RequestContext, tool: dict[str, Any], index: int, registry: McpRegistry,
                      deadline: float) -> McpRef:
    param = f"tools[{index}]"
    label = tool.get("server_label")
    if not isinstance(label, str) or not label:
        raise InvalidRequest("An mcp tool needs a 'server_label'.", param=f"{param}.server_label")
    for key in ("headers", "authorization", "connector_id", "tunnel_id"):
        if tool.get(key):
            raise InvalidRequest(f"'{key}' is not supported: the gateway connects only to registered MCP servers "
                                 "and injects their credentials itself.", param=f"{param}.{key}")
    server = await _server(tool, label, param, registry)
    listed = await _guarded(registry.tools(ctx, server.name, deadline))
    return McpRef(label, server, _allowed(listed, tool.get("allowed_tools"), f"{param}.allowed_tools"),
                  tool.get("require_approval"))


async def _server(tool: dict[str, Any], label: str, param: str, registry: McpRegistry) -> McpServer:
    url = tool.get("server_url")
    if url is None:
        server = await registry.server(label)
        if server is None:
            raise InvalidRequest(f"No MCP server is registered as {label!r}.", param=f"{param}.server_label",
                                 code="unknown_mcp_server")
        return server
    for server in (await registry.servers()).values():
        if server.url is not None and server.url.rstrip("/") == str(url).rstrip("/"):
            return server
    raise InvalidRequest("server_url is not a registered MCP server; the gateway connects only to servers "
                         "registered in its configuration or admin API.", param=f"{param}.server_url",
                         code="unknown_mcp_server")


def _allowed(tools: list[UpstreamTool] | tuple[UpstreamTool, ...], allowed: Any, param: str) -> list[UpstreamTool]:
    if allowed is None:
        return list(tools)
    if isinstance(allowed, list) and all(isinstance(n, str) for n in allowed):
        return [t for t in tools if t.name in allowed]
    if isinstance(allowed, dict):
        names, read_only = allowed.get("tool_names"), allowed.get("read_only")
        return [t for t in tools if (names is None or t.name in names)
                and (read_only is None or bool((t.annotations or {}).get("readOnlyHint")) == read_only)]
    raise InvalidRequest("allowed_tools must be a list of tool names or a filter object.", param=param)


async def _guarded(work: Awaitable[T]) -> T:
    try:
        return await work
    except McpUnavailable as exc:
        raise UpstreamError(str(exc), code="mcp_server_unavailable") from None
