"""Done-when for issue 13's stdio servers: ``@modelcontextprotocol/server-filesystem`` (npm, run with node)
as a stdio MCP server inside a bwrap sandbox on a real ``llmops node``, driven through ``StdioUpstream``.

The control plane is a real gateway (node enrollment, Redis node registry); this test process is a second
replica of it (the same node book and Redis, as ``gateway/wiring.py`` builds them), whose ``Scheduler``
sends the signed ``mcp_stdio`` jobs over pinned TLS. The node's operator allows one directory of server
code (``--mcp-path``): server-filesystem's ``node_modules`` and a stdlib MCP server (``mcp_tiny_server.py``)
that probes the sandbox from inside (network, egress proxy, its credential).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from executors.spec import Grants
from gateway.kernel.config.sections.mcp import McpServer
from gateway.kernel.config.sections.tools import SchedulerSettings, ToolLimits, ToolOptions, ToolsSettings
from gateway.kernel.context import Principal, RequestContext
from gateway.kernel.mcp import UpstreamResult
from middleware.tools.mcp.stdio import McpServerFailed, StdioUpstream
from routers.scheduler import Scheduler
from routers.scheduler.enrollment import NodeBook
from routers.scheduler.redis_registry import RedisNodeRegistry
from routers.scheduler.runner import NodeClients
from tests.conftest import GatewayFactory
from tests.executors.test_mcp_bridge import TINY
from tests.integration.test_agent_loop import ADMIN, join_token, node_drivers
from tests.support.configs import sim_config
from tests.support.npm import npm_package
from tests.support.processes import ROOT, ServerProcess, python_module, unavailable

pytestmark = pytest.mark.integration

FILESYSTEM = "@modelcontextprotocol/server-filesystem@2026.8.31"
NODE_ID = "mcp-stdio-node"
TOKEN = "tok-acme-3b9f0c1d7e"
# What a sandbox's root holds (executors/drivers/bwrap.py), besides the parents of the --mcp-path.
SANDBOX_ROOT = {"usr", "bin", "sbin", "lib", "lib64", "proc", "dev", "scratch", "job", "run"}
OPTIONS = ToolOptions(driver="bwrap", limits=ToolLimits(wall_seconds=30, cpu_seconds=10, memory_mb=512))


@dataclass
class Plane:
    gateway: ServerProcess
    node: ServerProcess
    cp_state: Path
    redis_url: str
    code: Path  # the node's --mcp-path
    workspaces: Path  # the node's --workspace-root


@pytest.fixture(scope="module")
def code_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """server-filesystem and the tiny server in a directory uid 65534 may read (bwrap binds it as that user)."""
    installed = npm_package(tmp_path_factory, FILESYSTEM)
    code = Path(tempfile.mkdtemp(prefix="mcp-code-"))
    try:
        code.chmod(0o755)
        shutil.copytree(installed / "node_modules", code / "node_modules", symlinks=True)
        shutil.copy(TINY, code / "tiny.py")
        yield code
    finally:
        shutil.rmtree(code, ignore_errors=True)


@pytest.fixture(scope="module")
def plane(sim: ServerProcess, start_gateway: GatewayFactory, redis_url: str, code_dir: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    cp_state = tmp_path_factory.mktemp("cp-state")
    tools = {"enrollment": {"enabled": True, "state_dir": str(cp_state)}, "scheduler": {"node_ttl_s": 5}}
    gateway = start_gateway(sim_config(sim.url, "sim-chat", auth={"static_keys": [ADMIN]}, tools=tools,
                                       redis={"url": redis_url}))
    workspaces = Path(tempfile.mkdtemp(prefix="mcp-ws-"))
    workspaces.chmod(0o711)
    argv = python_module("gateway.cli", "node", "--port", "0", "--control-plane", gateway.url, "--state-dir",
                         str(cp_state.parent / "node-state"), "--drivers", "bwrap", "--node-id", NODE_ID,
                         "--heartbeat-seconds", "0.5", "--workspace-root", str(workspaces / "root"),
                         "--mcp-path", str(code_dir))
    node = ServerProcess(argv, env={"LLMOPS_JOIN_TOKEN": join_token(gateway, NODE_ID, {})}).start(timeout_s=60)
    try:
        if "bwrap" not in node_drivers(node):
            unavailable("the bwrap driver")
        yield Plane(gateway, node, cp_state, redis_url, code_dir, workspaces / "root")
    finally:
        node.stop()
        shutil.rmtree(workspaces, ignore_errors=True)  # the node unmounted its workspaces when it stopped


@asynccontextmanager
async def replica(plane: Plane) -> AsyncIterator[Scheduler]:
    """A control-plane replica's scheduler (as gateway/wiring.py builds it), once the node is live in it."""
    client = aioredis.Redis.from_url(plane.redis_url)
    book = NodeBook.open(str(plane.cp_state))
    runner = NodeClients(book)
    scheduler = Scheduler(RedisNodeRegistry(client, 5.0), runner, SchedulerSettings(), book=book)
    try:
        deadline = time.monotonic() + 30
        while not any("mcp_stdio" in n.runtimes for n in await scheduler.refresh()):
            assert time.monotonic() < deadline, "the node never advertised mcp_stdio"
            await asyncio.sleep(0.2)
        yield scheduler
    finally:
        await runner.aclose()
        await client.aclose()


def ctx(tenant: str) -> RequestContext:
    return RequestContext(f"req-{tenant}", "chat", "", {}, {}, principal=Principal(tenant, f"key-{tenant}"))


def filesystem(plane: Plane, name: str = "fs", allowed: str = "/scratch") -> McpServer:
    entry = plane.code / "node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"
    return McpServer(name=name, command=("node", str(entry), allowed), options=OPTIONS)


def tiny(plane: Plane, *mode: str) -> McpServer:
    return McpServer(name="tiny", command=("/usr/bin/python3", str(plane.code / "tiny.py"), *mode), options=OPTIONS,
                     credential="per_subject")


def later(seconds: float = 60) -> float:
    return time.monotonic() + seconds


async def call(upstream: StdioUpstream, tenant: str, tool: str, token: str | None = None,
               grants: Grants | None = None, **arguments: Any) -> UpstreamResult:
    return await upstream.call_tool(ctx(tenant), tool, arguments, token=token, grants=grants or Grants(),
                                    deadline=later())


async def test_lists_the_filesystem_servers_tools(plane: Plane) -> None:
    async with replica(plane) as scheduler:
        fs = StdioUpstream(filesystem(plane), scheduler, ToolsSettings())
        tools = await fs.list_tools(ctx("acme"), None, later())
    names = {tool.name for tool in tools}
    assert {"read_text_file", "write_file", "list_directory", "list_allowed_directories"} <= names
    write = next(tool for tool in tools if tool.name == "write_file")
    assert write.offered_name == "fs__write_file" and write.input_schema["required"] == ["path", "content"]
    assert write.description and len(write.definition_hash()) == 64


async def test_a_workspace_keeps_files_across_calls_and_is_the_tenants_alone(plane: Plane) -> None:
    async with replica(plane) as scheduler:
        fs = StdioUpstream(filesystem(plane), scheduler, ToolsSettings())
        wrote = await call(fs, "acme", "write_file", path="/scratch/notes.txt", content="acme's notes")
        assert not wrote.is_error, wrote.text()
        assert wrote.node == NODE_ID and wrote.driver == "bwrap"
        read = await call(fs, "acme", "read_text_file", path="/scratch/notes.txt")
        assert not read.is_error and read.text() == "acme's notes"
        other = await call(fs, "globex", "read_text_file", path="/scratch/notes.txt")
        assert other.is_error and "acme's notes" not in other.text()
        listed = await call(fs, "globex", "list_directory", path="/scratch")
        assert "notes.txt" not in listed.text()
    on_host = plane.workspaces / "acme" / "mcp-fs" / "notes.txt"
    assert on_host.read_text() == "acme's notes"  # the node's workspace of (tenant, server), persistent


async def test_the_server_refuses_paths_outside_its_workspace(plane: Plane) -> None:
    async with replica(plane) as scheduler:
        fs = StdioUpstream(filesystem(plane), scheduler, ToolsSettings())
        result = await call(fs, "acme", "read_text_file", path="/etc/passwd")
    assert result.is_error and "outside allowed directories" in result.text()


async def test_the_sandbox_hides_the_host_even_from_a_server_allowed_everything(plane: Plane) -> None:
    """With ``/`` as its allowed directory the server refuses nothing itself: only the sandbox stands."""
    marker = Path(tempfile.mkdtemp(prefix="mcp-host-"))
    marker.chmod(0o755)
    (marker / "secret.txt").write_text("host-only secret")
    (marker / "secret.txt").chmod(0o644)
    try:
        async with replica(plane) as scheduler:
            fs = StdioUpstream(filesystem(plane, "fsroot", "/"), scheduler, ToolsSettings())
            await call(fs, "acme", "write_file", path="/scratch/mine.txt", content="acme's own")
            root = await call(fs, "acme", "list_directory", path="/")
            host = await call(fs, "acme", "read_text_file", path=str(marker / "secret.txt"))
            theirs = await call(fs, "globex", "read_text_file", path=str(plane.workspaces / "acme/mcp-fsroot/mine.txt"))
            code = await call(fs, "acme", "list_directory", path=str(plane.code))
            tmp = await call(fs, "acme", "list_directory", path=str(plane.code.parent))
    finally:
        shutil.rmtree(marker)
    entries = {line.split("] ", 1)[-1] for line in root.text().splitlines()}
    assert {"scratch", "usr", "tmp"} <= entries <= {*SANDBOX_ROOT, plane.code.parent.name}, entries
    assert [line.split("] ", 1)[-1] for line in tmp.text().splitlines()] == [plane.code.name]
    assert host.is_error and "host-only secret" not in host.text()
    assert theirs.is_error and "acme's own" not in theirs.text()
    assert not code.is_error and "node_modules" in code.text()  # the operator's --mcp-path, read-only


async def test_no_network_without_egress_and_the_proxy_with_it(plane: Plane, sim: ServerProcess) -> None:
    host, port = sim.url.removeprefix("http://").rsplit(":", 1)
    async with replica(plane) as scheduler:
        probe = StdioUpstream(tiny(plane), scheduler, ToolsSettings())
        direct = await call(probe, "acme", "connect", host=host, port=int(port))
        no_proxy = await call(probe, "acme", "egress_get", url=f"{sim.url}/v1/models")
        granted = Grants(egress=(f"{host}/32",))
        still_direct = await call(probe, "acme", "connect", grants=granted, host=host, port=int(port))
        proxied = await call(probe, "acme", "egress_get", grants=granted, url=f"{sim.url}/v1/models")
    assert direct.text().startswith("refused") and still_direct.text().startswith("refused")
    assert no_proxy.text() == "no egress socket"
    assert proxied.text() == "HTTP/1.1 200 OK"  # through the node's egress proxy, within the grant


async def test_the_token_reaches_the_servers_environment_and_is_redacted_from_its_output(plane: Plane) -> None:
    async with replica(plane) as scheduler:
        probe = StdioUpstream(tiny(plane), scheduler, ToolsSettings())
        digest = await call(probe, "acme", "env_sha256", token=TOKEN, name="MCP_TOKEN")
        echoed = await call(probe, "acme", "read", token=TOKEN, path="/run/secrets/mcp_token")
        without = await call(probe, "acme", "env_sha256", name="MCP_TOKEN")
    assert digest.text() == hashlib.sha256(TOKEN.encode()).hexdigest()
    assert TOKEN not in echoed.text() and echoed.text() and not echoed.text().startswith("error")
    assert without.text() == hashlib.sha256(b"").hexdigest()


async def test_a_crashing_server_and_an_unknown_tool_are_clear_errors(plane: Plane) -> None:
    async with replica(plane) as scheduler:
        with pytest.raises(McpServerFailed) as failed:
            await StdioUpstream(tiny(plane, "crash"), scheduler, ToolsSettings()).list_tools(ctx("acme"), None, later())
        unknown = await call(StdioUpstream(tiny(plane), scheduler, ToolsSettings()), "acme", "fail")
    assert failed.value.code == "mcp_server_failed" and failed.value.status == 502
    assert "exited with code 3" in failed.value.message and "boom" in failed.value.message
    assert unknown.is_error and "MCP error -32602" in unknown.text() and unknown.node == NODE_ID


def test_a_gateway_offers_the_stdio_servers_tools_on_mcp_and_runs_them_on_the_node(
        plane: Plane, start_gateway: GatewayFactory, sim: ServerProcess, tmp_path: Path) -> None:
    """End to end: a replica configured with ``mcp.servers[].command`` lists ``fs__*`` on ``/mcp`` and runs a
    write then a read through the agent loop's calls, each one an ``mcp_stdio`` job on the node."""
    entry = plane.code / "node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"
    allowed = ["fs__write_file", "fs__read_text_file"]
    data = tmp_path / "mcp.json"  # the shipped policy denies MCP servers until its data lists them
    data.write_text(json.dumps({"policy": {"mcp": {"servers": {"fs": {"tools": ["write_file", "read_text_file"]}}}}}))
    policy = {"paths": [str(ROOT / "config" / "policies"), str(data)], "reload_interval_s": 0}
    tools = {"enrollment": {"enabled": True, "state_dir": str(plane.cp_state)}, "scheduler": {"node_ttl_s": 5}}
    mcp = {"servers": [{"name": "fs", "command": ["node", str(entry), "/scratch"],
                        "options": {"driver": "bwrap", "limits": {"wall_seconds": 30, "memory_mb": 512}}}]}
    replica_gw = start_gateway(sim_config(sim.url, "sim-chat", chain=["authn", "tools"], tools=tools, mcp=mcp,
                                          policy=policy, auth={"static_keys": [ADMIN]},
                                          redis={"url": plane.redis_url}))
    headers = {"authorization": f"Bearer {ADMIN['key']}", "content-type": "application/json",
               "accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25"}

    def rpc(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, **({"params": params} if params else {})}
        answer = httpx.post(f"{replica_gw.url}/mcp", json=body, headers=headers, timeout=90)
        assert answer.status_code == 200, answer.text
        messages = [json.loads(line[5:]) for line in answer.text.splitlines() if line.startswith("data:")]
        result: dict[str, Any] = next(m for m in messages if m.get("id") == 1)["result"]
        return result

    deadline = time.monotonic() + 60
    while not (listed := {t["name"] for t in rpc("tools/list")["tools"]}) >= set(allowed):
        assert time.monotonic() < deadline, rpc("tools/call", {"name": "fs__write_file", "arguments": {}})
        time.sleep(0.5)
    assert "fs__list_directory" not in listed  # the policy's data names only two of the server's tools
    refused = rpc("tools/call", {"name": "fs__list_directory", "arguments": {"path": "/scratch"}})
    assert refused["isError"] is True and "denied by policy" in refused["content"][0]["text"]
    wrote = rpc("tools/call", {"name": "fs__write_file",
                               "arguments": {"path": "/scratch/e2e.txt", "content": "through the gateway"}})
    assert wrote.get("isError") is not True, wrote
    read = rpc("tools/call", {"name": "fs__read_text_file", "arguments": {"path": "/scratch/e2e.txt"}})
    assert read.get("isError") is not True and read["content"][0]["text"] == "through the gateway"
    trace = read["_meta"]["llmops"]["trace"]
    assert trace["node"] == NODE_ID and trace["driver"] == "bwrap" and trace["status"] == "ok"
    assert (plane.workspaces / "ops" / "mcp-fs" / "e2e.txt").read_text() == "through the gateway"
