"""One upstream MCP server as the tools stage sees it: list its tools, call one.

Two transports implement it: streamable HTTP (the gateway is the MCP client, ``http.py``) and stdio
(the server's command runs in a sandbox on a data-plane node, ``stdio.py``). ``token`` is the credential
the gateway injects for this caller (never the client's own key); ``grants`` are what the policy granted
the call (egress for stdio servers); ``deadline`` is ``time.monotonic()`` by which the call must end.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from executors.spec import Grants
from gateway.kernel.context import RequestContext
from gateway.kernel.mcp import UpstreamResult, UpstreamTool


class Upstream(Protocol):
    @property
    def name(self) -> str: ...

    async def list_tools(self, ctx: RequestContext, token: str | None, deadline: float) -> list[UpstreamTool]: ...

    async def call_tool(
        self, ctx: RequestContext, tool: str, arguments: Mapping[str, Any], *, token: str | None, grants: Grants,
        deadline: float,
    ) -> UpstreamResult: ...

    async def aclose(self) -> None: ...
