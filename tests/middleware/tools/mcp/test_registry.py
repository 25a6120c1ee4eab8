"""The registry of upstream MCP servers, against a real MCP server (``tests/support/recording_mcp.py``, the
``mcp`` SDK's server side over streamable HTTP, printing the credential of every request) reached through
the real ``HttpUpstream``. Doubles: an in-test credential store and definition guard (the ports' shapes).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import time
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import pytest

from executors.spec import Grants
from gateway.kernel.config import settings_from_mapping
from gateway.kernel.context import Principal, RequestContext
from gateway.kernel.mcp import UpstreamTool, subject_id
from gateway.kernel.observability.logging import JsonLog
from gateway.services.mcp.ports import AdmitAll, Admitted
from middleware.tools.mcp.registry import McpRegistry, McpUnavailable, MissingCredential
from tests.support.mcp_servers import start_recorder
from tests.support.processes import ServerProcess

STATIC = "static-secret-value-9f3a"


class Tokens:
    """A credential store holding tokens by (subject, server)."""

    def __init__(self, tokens: dict[tuple[str, str], str]) -> None:
        self.tokens = tokens
        self.asked: list[tuple[str, str]] = []

    async def token(self, subject: str, server: str) -> str | None:
        self.asked.append((subject, server))
        return self.tokens.get((subject, server))

    async def put(self, subject: str, server: str, token: str) -> None:
        self.tokens[(subject, server)] = token

    async def delete(self, subject: str, server: str) -> bool:
        return self.tokens.pop((subject, server), None) is not None


class Holds:
    """Withholds ``whoami``, flags ``echo``."""

    async def admit(self, server: str, tools: Sequence[UpstreamTool]) -> Admitted:
        return Admitted(tuple(t for t in tools if t.name != "whoami"), held={"whoami": "changed"},
                        flagged={"echo": "suspicious"})


@pytest.fixture(scope="module")
def recorder() -> Iterator[ServerProcess]:
    server = start_recorder()
    yield server
    server.stop()


def registry(recorder: ServerProcess, credential: str = "per_subject", store: Any = None, guard: Any = None,
             log: io.BytesIO | None = None, **server: Any) -> McpRegistry:
    secret = {"secret": "REC"} if credential == "static" else {}
    settings = settings_from_mapping({
        "tools": {"secrets": {"REC": STATIC}},
        "mcp": {"servers": [{"name": "rec", "url": f"{recorder.url}/mcp", "credential": credential, **secret,
                             **server}], "list_ttl_s": 60,
                "credentials_key": base64.b64encode(b"k" * 32).decode()},  # the store here is the test's own
    })
    return McpRegistry(settings, store or Tokens({}), guard or AdmitAll(), JsonLog(log or io.BytesIO()))


def ctx(key_id: str) -> RequestContext:
    return RequestContext(f"req-{key_id}", "chat", "", {}, {}, principal=Principal("research", key_id))


async def whoami(reg: McpRegistry, who: str, tool_name: str = "whoami") -> str:
    tool = await reg.tool(ctx(who), f"rec__{tool_name}", time.monotonic() + 30)
    assert tool is not None
    result = await reg.call(ctx(who), tool, {}, Grants(), time.monotonic() + 30)
    return result.text()


def sha(header: str) -> str:
    return hashlib.sha256(header.encode()).hexdigest()


async def test_each_subject_s_own_token_reaches_the_upstream_and_never_another_s(recorder: ServerProcess) -> None:
    a, b = subject_id("research", "key-a", {}), subject_id("research", "key-b", {})
    store = Tokens({(a, "rec"): "token-of-a-111", (b, "rec"): "token-of-b-222"})
    reg = registry(recorder, store=store)
    try:
        assert await whoami(reg, "key-a") == "Bearer [REDACTED:mcp-token]"  # the model never reads it
        nested = await reg.tool(ctx("key-a"), "rec__whoami_resource", time.monotonic() + 30)
        assert nested is not None
        inside = (await reg.call(ctx("key-a"), nested, {}, Grants(), time.monotonic() + 30)).content
        assert [b["resource"]["text"] for b in inside] == ["Bearer [REDACTED:mcp-token]"]  # nor nested
        for _ in range(2):  # interleaved, on the sessions each token keeps open
            assert await whoami(reg, "key-a", "digest") == sha("Bearer token-of-a-111")
            assert await whoami(reg, "key-b", "digest") == sha("Bearer token-of-b-222")
        with pytest.raises(MissingCredential, match="none is stored for this caller"):
            await whoami(reg, "key-c")  # a caller without a token never borrows one
        assert (subject_id("research", "key-c", {}), "rec") in store.asked
    finally:
        await reg.aclose()


async def test_a_static_secret_is_injected_for_every_caller_and_redacted(recorder: ServerProcess) -> None:
    reg = registry(recorder, "static", header="X-Api-Key", format="key={value}")
    try:
        assert await whoami(reg, "anyone", "digest") == sha("")  # it came in X-Api-Key, not Authorization
        echo = await reg.tool(ctx("anyone"), "rec__echo", time.monotonic() + 30)
        assert echo is not None
        result = await reg.call(ctx("anyone"), echo, {"message": f"leak {STATIC}"}, Grants(), time.monotonic() + 30)
        assert result.text() == "Echo: leak [REDACTED:REC]"
    finally:
        await reg.aclose()


async def test_listings_are_guarded_filtered_and_cached(recorder: ServerProcess) -> None:
    log = io.BytesIO()
    reg = registry(recorder, "none", guard=Holds(), log=log, allowed_tools=["echo", "whoami"])
    try:
        deadline = time.monotonic() + 30
        tools = await reg.tools(ctx("k"), "rec", deadline)
        assert [t.name for t in tools] == ["echo"]  # whoami held by the guard
        events = [orjson.loads(line)["event"] for line in log.getvalue().splitlines()]
        assert "mcp_tool_flagged" in events and "mcp_tool_held" in events
        assert await reg.tools(ctx("other"), "rec", deadline) is tools  # served from the cache
        assert await reg.tool(ctx("k"), "rec__whoami", deadline) is None
    finally:
        await reg.aclose()
    narrowed = registry(recorder, "none", allowed_tools=["whoami"])
    try:
        assert [t.name for t in await narrowed.tools(ctx("k"), "rec", time.monotonic() + 30)] == ["whoami"]
        assert await narrowed.tool(ctx("k"), "rec__echo", time.monotonic() + 30) is None
    finally:
        await narrowed.aclose()


async def test_unknown_and_unreachable_servers_are_clear_errors(recorder: ServerProcess) -> None:
    reg = registry(recorder, "none")
    try:
        with pytest.raises(McpUnavailable, match="No MCP server is registered as 'nope'"):
            await reg.tools(ctx("k"), "nope", time.monotonic() + 5)
        assert await reg.tool(ctx("k"), "nope__echo", time.monotonic() + 5) is None
    finally:
        await reg.aclose()
    dead = settings_from_mapping({"mcp": {"servers": [{"name": "dead", "url": "http://127.0.0.1:9/mcp"}]}})
    down = McpRegistry(dead, Tokens({}), AdmitAll(), JsonLog(io.BytesIO()))
    try:
        with pytest.raises(McpUnavailable, match="'dead' could not list its tools"):
            await down.tools(ctx("k"), "dead", time.monotonic() + 10)
    finally:
        await down.aclose()


async def test_a_server_that_never_answers_holds_no_listing_up() -> None:
    """It accepts the connection and says nothing: the listing gives up after ``mcp.list_timeout_s``, however
    far the request's own deadline is."""
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        await asyncio.sleep(3600)

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = settings_from_mapping({"mcp": {"servers": [{"name": "mute", "url": f"http://127.0.0.1:{port}/mcp"}],
                                              "list_timeout_s": 0.5}})
    reg = McpRegistry(settings, Tokens({}), AdmitAll(), JsonLog(io.BytesIO()))
    try:
        with pytest.raises(McpUnavailable, match="'mute' could not list its tools"):
            await asyncio.wait_for(reg.tools(ctx("k"), "mute", time.monotonic() + 3600), 30)
    finally:
        await reg.aclose()
        server.close()


async def test_a_stdio_server_runs_on_nodes_and_without_any_it_says_so() -> None:
    log = io.BytesIO()
    settings = settings_from_mapping({"mcp": {"servers": [{"name": "fs", "command": ["mcp-fs"]}]}})
    reg = McpRegistry(settings, Tokens({}), AdmitAll(), JsonLog(log))  # no scheduler: no nodes
    reg.report_unavailable()
    assert b'"event":"mcp_server_unavailable"' not in log.getvalue()
    with pytest.raises(McpUnavailable, match="'fs' could not list its tools: .*No tool nodes are configured"):
        await reg.tools(ctx("k"), "fs", time.monotonic() + 5)
