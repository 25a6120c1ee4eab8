"""``HttpUpstream`` on a real streamable-HTTP server (``tests/support/recording_mcp.py``, the ``mcp`` SDK's
server): one session per credential, reused; a session the server lost is replaced and the call still
answers; a server without the handshake is spoken to with the SDK's client."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from executors.spec import Grants
from gateway.kernel.config.sections.mcp import McpServer
from gateway.kernel.context import RequestContext
from middleware.tools.mcp.http import HttpUpstream, UpstreamFailure
from tests.support.mcp_servers import free_port
from tests.support.processes import ServerProcess, python_module

CTX = RequestContext("req-http", "chat", "", {}, {})


def recorder(port: int, *flags: str) -> ServerProcess:
    return ServerProcess(python_module("tests.support.recording_mcp", "--port", str(port), *flags)).start(timeout_s=90)


@pytest.fixture
def port() -> Iterator[int]:
    yield free_port()


async def call(up: HttpUpstream, tool: str, token: str | None) -> str:
    result = await up.call_tool(CTX, tool, {}, token=token, grants=Grants(), deadline=time.monotonic() + 30)
    assert not result.is_error, result
    return result.text()


@pytest.mark.parametrize("flags", [(), ("--legacy",), ("--modern",)], ids=["both", "2025-11-25", "2026-07-28"])
async def test_one_session_per_token_reused_and_replaced_when_the_server_lost_it(port: int,
                                                                                flags: tuple[str, ...]) -> None:
    """A session with SSE replies on a server that takes the handshake (the gateway's own client), or, on one
    that speaks only the stateless 2026 revision, the SDK's client (JSON replies)."""
    server = recorder(port, *flags)
    up = HttpUpstream(McpServer(name="rec", url=f"http://127.0.0.1:{port}/mcp"))
    try:
        await call(up, "requests", "alpha")  # the session's handshake; the SDK lists the tools after a first call
        second = int(await call(up, "requests", "alpha"))
        assert int(await call(up, "requests", "alpha")) == second + 1  # one POST per call: no new handshake
        opened = int(await call(up, "connections", "alpha"))
        for _ in range(5):
            await call(up, "whoami", "alpha")
        assert int(await call(up, "connections", "alpha")) == opened  # its connection is kept, not reopened
        assert int(await call(up, "requests", "beta")) >= second + 4  # another credential: its own session first
        assert await call(up, "whoami", "beta") == "Bearer beta"
        assert await call(up, "whoami", None) == ""  # no credential: no header at all
        server.stop()
        server = recorder(port, *flags)  # a restarted server: the old connections (and any session) are gone
        assert await call(up, "whoami", "alpha") == "Bearer alpha"
        assert int(await call(up, "requests", "alpha")) > 1
    finally:
        await up.aclose()
        server.stop()


async def test_tools_are_listed_with_their_schemas_and_unknown_tools_are_error_results(port: int) -> None:
    server = recorder(port)
    up = HttpUpstream(McpServer(name="rec", url=f"http://127.0.0.1:{port}/mcp"))
    try:
        tools = {t.name: t for t in await up.list_tools(CTX, None, time.monotonic() + 30)}
        assert {"whoami", "digest", "requests", "echo"} <= set(tools)
        assert tools["echo"].offered_name == "rec__echo" and tools["echo"].input_schema["required"] == ["message"]
        missing = await up.call_tool(CTX, "nope", {}, token=None, grants=Grants(), deadline=time.monotonic() + 30)
        assert missing.is_error and "nope" in missing.text()
    finally:
        await up.aclose()
        server.stop()


async def test_an_unreachable_server_is_an_upstream_failure(port: int) -> None:
    up = HttpUpstream(McpServer(name="gone", url=f"http://127.0.0.1:{port}/mcp"))
    try:
        with pytest.raises(UpstreamFailure, match="MCP server 'gone' failed"):
            await up.list_tools(CTX, "secret-token", time.monotonic() + 20)
    finally:
        await up.aclose()
