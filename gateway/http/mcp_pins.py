"""The admin API for pinned upstream tool definitions (admin role, then the policy's ``admin`` action).

    GET  /admin/mcp/servers/{name}/tools                 → each tool's approved and pending definition, its
                                                           status (approved, pending, changed, revoked), what
                                                           changed and what the scanner found
    POST /admin/mcp/servers/{name}/tools/{tool}/approve  {"hash"?} → pins the pending definition (only if its
                                                           hash is ``hash``, when given: what was reviewed)
    POST /admin/mcp/servers/{name}/tools/{tool}/revoke   → withholds the tool until approved again
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from msgspec import Meta, Struct
from starlette.requests import Request

from gateway.http.parsing import parse_object, validate
from gateway.kernel.context import Principal
from gateway.kernel.errors import NotFound
from gateway.kernel.observability.logging import JsonLog
from gateway.services.mcp.pins import PinnedDefinitions


class ApproveDefinition(Struct, forbid_unknown_fields=True):
    """``POST .../approve``: optionally, the hash of the definition reviewed (a 409 if it changed since)."""

    hash: Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")] | None = None


class ApprovedDefinition(Struct):
    hash: str | None
    description: str
    input_schema: dict[str, Any]
    approved_at: int | None
    approved_by: str | None


class PendingDefinition(Struct):
    hash: str | None
    description: str
    input_schema: dict[str, Any]
    seen_at: int | None
    findings: list[dict[str, str]]
    changes: list[str]


class McpToolDefinition(Struct):
    object: Literal["mcp.tool_definition"]
    server: str
    tool: str
    status: Literal["approved", "pending", "changed", "revoked"]
    approved: ApprovedDefinition | None
    pending: PendingDefinition | None


class McpToolDefinitionList(Struct):
    object: Literal["list"]
    server: str
    data: list[McpToolDefinition]


class PinsAdmin:
    def __init__(self, guard: PinnedDefinitions, known: Callable[[str], Awaitable[bool]], log: JsonLog) -> None:
        self._guard = guard
        self._known = known
        self._log = log

    async def list(self, request: Request, caller: Principal | None) -> dict[str, Any]:
        server = await self._server(request)
        return {"object": "list", "server": server, "data": [p.to_json() for p in await self._guard.pins(server)]}

    async def approve(self, request: Request, caller: Principal | None) -> dict[str, Any]:
        server, tool = await self._server(request), str(request.path_params["tool"])
        raw = await request.body()
        body = validate(parse_object(raw), ApproveDefinition) if raw.strip() else ApproveDefinition()
        by = caller.key_id if caller is not None else ""
        pin = await self._guard.approve(server, tool, by, body.hash)
        self._log.info("mcp_definition_approved", server=server, tool=tool, hash=pin.approved_hash, by=by)
        return pin.to_json()

    async def revoke(self, request: Request, caller: Principal | None) -> dict[str, Any]:
        server, tool = await self._server(request), str(request.path_params["tool"])
        pin = await self._guard.revoke(server, tool)
        self._log.warning("mcp_definition_revoked", server=server, tool=tool,
                          by=caller.key_id if caller is not None else "")
        return pin.to_json()

    async def _server(self, request: Request) -> str:
        server = str(request.path_params["name"])
        if not await self._known(server):
            raise NotFound(f"No MCP server {server!r} is registered.", code="mcp_server_not_found")
        return server
