"""The upstream MCP server admin API (admin role only): register, list, show and remove servers.

    POST   /admin/mcp/servers          an ``McpServer`` (name, url | command, credential, ...) → 201 server
    GET    /admin/mcp/servers          → {"object": "list", "data": [server, ...]} (config and runtime)
    GET    /admin/mcp/servers/{name}   → server
    DELETE /admin/mcp/servers/{name}   → {"id": name, "object": "mcp.server.deleted", "deleted": true}

Servers registered here are kept in PostgreSQL, so every replica offers them (within a second). A server
shows with ``source``: ``config`` (``mcp.servers``: change the configuration to change it; a 409 here) or
``runtime``. A name already taken is a 409 ``mcp_server_exists``; a body that is not a valid server a 400
naming the field.
"""

from __future__ import annotations

from typing import Any, Literal

from msgspec import Struct
from pydantic import ValidationError
from starlette.requests import Request

from gateway.http.parsing import parse_object
from gateway.kernel.config.sections.mcp import McpServer
from gateway.kernel.context import Principal
from gateway.kernel.errors import InvalidRequest, NotFound, ServiceOverloaded
from middleware.tools.mcp.registry import McpRegistry, McpUnavailable, ServerExists


class NewMcpServer(Struct):
    """``POST /admin/mcp/servers`` (as ``mcp.servers`` entries in the configuration; validated as one)."""

    name: str
    description: str = ""
    url: str | None = None
    command: list[str] = []
    credential: Literal["none", "static", "per_subject"] = "none"
    secret: str | None = None
    header: str = "Authorization"
    format: str = "Bearer {value}"
    allowed_tools: list[str] | None = None
    on_change: Literal["block", "flag"] = "block"
    options: dict[str, Any] = {}
    egress: list[str] = []


class McpServerAdmin:
    def __init__(self, registry: McpRegistry) -> None:
        self._registry = registry

    async def create(self, request: Request, caller: Principal | None) -> dict[str, Any]:
        server = _parse(await request.body())
        try:
            await self._registry.register(server)
        except ServerExists:
            raise InvalidRequest(f"An MCP server named {server.name!r} already exists.", param="name",
                                 code="mcp_server_exists", status=409) from None
        except McpUnavailable as exc:
            raise ServiceOverloaded(str(exc), code="mcp_registry_unavailable") from None
        return self._shown(server)

    async def list(self, request: Request, caller: Principal | None) -> dict[str, Any]:
        servers = await self._registry.servers()
        return {"object": "list", "data": [self._shown(s) for _, s in sorted(servers.items())]}

    async def show(self, request: Request, caller: Principal | None) -> dict[str, Any]:
        return self._shown(await self._found(request))

    async def delete(self, request: Request, caller: Principal | None) -> dict[str, Any]:
        server = await self._found(request)
        if self._registry.is_configured(server.name):
            raise InvalidRequest(f"MCP server {server.name!r} is defined in the configuration (mcp.servers): "
                                 "change the configuration to remove it.", param="name", code="config_mcp_server",
                                 status=409)
        if not await self._registry.remove(server.name):
            raise NotFound(f"No MCP server named {server.name!r}.", code="mcp_server_not_found")
        return {"id": server.name, "object": "mcp.server.deleted", "deleted": True}

    async def _found(self, request: Request) -> McpServer:
        name = request.path_params["name"]
        server = await self._registry.server(name)
        if server is None:
            raise NotFound(f"No MCP server named {name!r}.", code="mcp_server_not_found")
        return server

    def _shown(self, server: McpServer) -> dict[str, Any]:
        source = "config" if self._registry.is_configured(server.name) else "runtime"
        return {"object": "mcp.server", **server.model_dump(mode="json"), "source": source}


def _parse(raw: bytes) -> McpServer:
    body = parse_object(raw)
    try:
        return McpServer.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        param = ".".join(str(p) for p in first["loc"]) or _named(message)
        raise InvalidRequest(f"Invalid MCP server: {message}.", param=param, code="invalid_value") from None


def _named(message: str) -> str | None:
    """The field a whole-server error is about (``needs exactly one of url or command``: url)."""
    return next((f for f in ("url", "secret", "format") if f in message), None)
