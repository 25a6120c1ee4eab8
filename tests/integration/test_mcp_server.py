"""The gateway as one MCP server (``POST /mcp``): two real gateway replicas on one Redis and one shared
node book, a real ``llmops node`` running the python tool in bubblewrap, and the official MCP SDKs as
clients (Python ``mcp``, and the TypeScript ``@modelcontextprotocol/sdk`` run with node).

Policy: the default policy (``config/policies``). ``sk-mcp-agent`` (role ``agent``) may use every tool;
``sk-mcp-trial`` (role ``trial``) only ``calculator``, which is no registered tool: it sees none, and
its calls are denied with the policy's reason.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import httpx
import httpx2
import openai
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult, RequestParamsMeta, TextContent

from tests.conftest import GatewayFactory
from tests.integration.test_agent_loop import ADMIN, node_drivers, start_node, wait_for_tools
from tests.integration.test_observability import access_lines
from tests.support.configs import sim_config
from tests.support.npm import npm_package
from tests.support.processes import ServerProcess, unavailable

pytestmark = pytest.mark.integration

AGENT, TRIAL, SLOW = "sk-mcp-agent", "sk-mcp-trial", "sk-mcp-slow"
TS_SDK = "@modelcontextprotocol/sdk@1.32.2"
DIGEST = hashlib.sha256(b"hello llmops").hexdigest()
SHA_CODE = "import hashlib, time\ntime.sleep(2.5)\nprint(hashlib.sha256(b'hello llmops').hexdigest())"
ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def mcp_config(sim_url: str, redis_url: str, state_dir: Path) -> dict[str, Any]:
    keys = [{"key": AGENT, "key_id": "mcp-agent", "tenant": "research", "roles": ["agent"]},
            {"key": TRIAL, "key_id": "mcp-trial", "tenant": "research", "roles": ["trial"]},
            {"key": SLOW, "key_id": "mcp-slow", "tenant": "slow", "roles": ["agent"], "rpm": 2}, ADMIN]
    tools = {"enrollment": {"enabled": True, "state_dir": str(state_dir)}, "scheduler": {"node_ttl_s": 5},
             "options": {"python": {"driver": "bwrap"}}}
    return sim_config(sim_url, "sim-chat", chain=["authn", "limits", "tools"], auth={"static_keys": keys},
                      tools=tools, redis={"url": redis_url})


@pytest.fixture(scope="module")
def replicas(sim: ServerProcess, start_gateway: GatewayFactory, redis_url: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two replicas of one control plane (Redis node registry, shared node book); the node enrolls with the first."""
    config = mcp_config(sim.url, redis_url, tmp_path_factory.mktemp("cp-state"))
    first, second = start_gateway(config), start_gateway(config)
    node = start_node(first, "bwrap", "mcp-node")
    try:
        if "bwrap" not in node_drivers(node):
            unavailable("the bwrap driver")
        for gateway in (first, second):
            wait_for_tools(openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=AGENT, max_retries=0))
        yield first, second
    finally:
        node.stop()


@pytest.fixture(scope="module")
def url(replicas: tuple[ServerProcess, ServerProcess]) -> str:
    return replicas[0].url


@asynccontextmanager
async def connected(url: str, key: str, mode: str = "legacy",
                    transport: httpx2.AsyncBaseTransport | None = None) -> AsyncIterator[Client]:
    """The Python SDK's client on ``url``/mcp with ``key`` as its bearer."""
    http = httpx2.AsyncClient(headers={"authorization": f"Bearer {key}"}, transport=transport,
                              timeout=httpx2.Timeout(30, read=120))
    async with http, Client(streamable_http_client(f"{url}/mcp", http_client=http), mode=mode) as client:
        yield client


def text_of(result: CallToolResult) -> str:
    (block,) = result.content
    assert isinstance(block, TextContent)
    return block.text


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_python_sdk_lists_and_calls_python_with_progress(url: str, mode: str) -> None:
    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message))

    async with connected(url, AGENT, mode) as client:
        # legacy: the initialize handshake (2025-11-25); auto: the stateless per-request revision
        assert client.session.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"python", "shell", "http_request"} <= names
        result = await client.call_tool("python", {"code": SHA_CODE}, progress_callback=on_progress)
    assert not result.is_error and text_of(result).strip() == DIGEST
    assert result.meta is not None
    trace = result.meta["llmops"]["trace"]
    assert trace["status"] == "ok" and trace["node"] == "mcp-node" and trace["driver"] == "bwrap"
    assert len(updates) >= 2, updates  # a start and an end at least (one every 2 s while it runs)
    assert updates[0][2] == "python: started" and updates[-1][2] == "python: ok"
    values = [u[0] for u in updates]
    assert values == sorted(values) and len(set(values)) == len(values)
    assert updates[-1][1] == updates[-1][0]  # the last one says it is complete


async def test_a_failing_program_is_an_error_result(url: str) -> None:
    async with connected(url, AGENT) as client:
        result = await client.call_tool("python", {"code": "import sys\nprint('half')\nsys.exit(3)"})
    assert result.is_error and text_of(result).startswith("exit code 3") and "half" in text_of(result)
    assert result.meta is not None and result.meta["llmops"]["trace"]["exit_code"] == 3


async def test_a_tool_the_policy_forbids_is_not_listed_and_is_denied(url: str) -> None:
    async with connected(url, AGENT) as agent:
        assert "python" in {tool.name for tool in (await agent.list_tools()).tools}
    async with connected(url, TRIAL) as trial:
        assert "python" not in {tool.name for tool in (await trial.list_tools()).tools}
        result = await trial.call_tool("python", {"code": "print('never runs')"})
    assert result.is_error
    assert 'tool "python" is not allowed for roles ["trial"]' in text_of(result)
    assert result.meta is not None
    trace = result.meta["llmops"]["trace"]
    assert trace["status"] == "denied" and trace["decision_id"] and "node" not in trace


async def test_unknown_tools_and_bad_options_are_invalid_params(url: str) -> None:
    async with connected(url, AGENT) as client:
        with pytest.raises(MCPError) as unknown:
            await client.call_tool("no_such_tool", {})
        with pytest.raises(MCPError) as bad:
            meta = cast(RequestParamsMeta, {"llmops": {"workspace": "../etc"}})
            await client.call_tool("python", {"code": "print(1)"}, meta=meta)
    assert unknown.value.code == INVALID_PARAMS and "no_such_tool" in unknown.value.message
    assert bad.value.code == INVALID_PARAMS and "workspace" in bad.value.message


def test_typescript_sdk_lists_and_calls_python(url: str, ts_client: Path) -> None:
    run = subprocess.run(["node", str(ts_client), f"{url}/mcp", AGENT], cwd=ts_client.parent,
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["server"]["name"] == "llmops-gateway"
    assert {"python", "shell", "http_request"} <= set(out["tools"])
    assert out["result"].get("isError") is not True
    assert out["result"]["content"] == [{"type": "text", "text": "42\n"}]
    assert len(out["progress"]) >= 2 and out["progress"][-1]["total"] == out["progress"][-1]["progress"]


@pytest.fixture(scope="session")
def ts_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The TypeScript SDK, pinned, installed with npm into a fresh directory (unreachable: fails in CI)."""
    where = npm_package(tmp_path_factory, TS_SDK)
    script = where / "client.mjs"
    shutil.copy(Path(__file__).with_name("mcp_client.mjs"), script)
    return script


def test_the_2025_06_18_handshake_is_spoken(url: str) -> None:
    headers = {**ACCEPT, "authorization": f"Bearer {AGENT}"}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "raw", "version": "0"}}}
    with httpx.Client(timeout=30) as http:
        first = events(http.post(f"{url}/mcp", json=init, headers=headers))
        assert first[0]["result"]["protocolVersion"] == "2025-06-18"
        assert first[0]["result"]["serverInfo"]["name"] == "llmops-gateway"
        listed = events(http.post(f"{url}/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                                  headers={**headers, "mcp-protocol-version": "2025-06-18"}))
    assert "python" in {tool["name"] for tool in listed[0]["result"]["tools"]}


def events(response: httpx.Response) -> list[dict[str, Any]]:
    """The JSON-RPC messages of an SSE reply (no ``Mcp-Session-Id``: the server keeps no session)."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "mcp-session-id" not in response.headers
    return [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]


@pytest.mark.parametrize("key", [None, "sk-not-a-key"], ids=["missing", "invalid"])
def test_a_missing_or_invalid_key_is_a_401(url: str, key: str | None) -> None:
    headers = {**ACCEPT, **({"authorization": f"Bearer {key}"} if key else {})}
    response = httpx.post(f"{url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer ")
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["error"]["data"]["code"] == "invalid_api_key"


async def test_the_sdk_client_gets_the_401_as_a_json_rpc_error(url: str) -> None:
    with pytest.raises(BaseExceptionGroup) as refused:  # raised out of the SDK's task group
        async with connected(url, "sk-not-a-key") as client:
            await client.list_tools()
    assert refused.group_contains(MCPError, match="Incorrect API key")


def test_requests_are_rate_limited_per_key(url: str) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {**ACCEPT, "authorization": f"Bearer {SLOW}"}
    statuses = [httpx.post(f"{url}/mcp", json=body, headers=headers).status_code for _ in range(3)]
    assert statuses[:2] == [200, 200] and statuses[2] == 429
    refused = httpx.post(f"{url}/mcp", json=body, headers=headers)
    assert int(refused.headers["retry-after"]) >= 1 and refused.json()["error"]["data"]["code"]


def test_logs_and_metrics_carry_route_mcp_and_the_request_id(replicas: tuple[ServerProcess, ServerProcess]) -> None:
    gateway = replicas[0]
    headers = {**ACCEPT, "authorization": f"Bearer {AGENT}", "x-request-id": "mcp-trace-1"}
    response = httpx.post(f"{gateway.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                          headers=headers, timeout=30)
    assert response.headers["x-request-id"] == "mcp-trace-1"
    (line,) = access_lines(gateway, "mcp-trace-1")
    assert line["route"] == "mcp" and line["status"] == 200
    metrics = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    assert 'route="mcp"' in metrics


class Alternating(httpx2.AsyncBaseTransport):
    """Sends each HTTP request of one client session to the next replica in turn."""

    def __init__(self, urls: list[str]) -> None:
        self._inner = httpx2.AsyncHTTPTransport()
        self._targets = itertools.cycle([httpx2.URL(u) for u in urls])
        self.ports: list[int] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        target = next(self._targets)
        request.url = request.url.copy_with(host=target.host, port=target.port)
        request.headers["host"] = f"{target.host}:{target.port}"
        self.ports.append(target.port or 0)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_one_client_session_spans_two_replicas(replicas: tuple[ServerProcess, ServerProcess],
                                                      mode: str) -> None:
    first, second = replicas
    transport = Alternating([first.url, second.url])
    async with connected(first.url, AGENT, mode, transport) as client:
        for _ in range(2):
            assert "python" in {tool.name for tool in (await client.list_tools()).tools}
            result = await client.call_tool("python", {"code": "print(6 * 7)"})
            assert not result.is_error and text_of(result) == "42\n"
    served = set(transport.ports)
    assert served == {httpx2.URL(first.url).port, httpx2.URL(second.url).port}
    assert len(transport.ports) >= 4
