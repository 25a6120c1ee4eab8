"""``StdioUpstream`` alone: the jobs it builds, how it reads the bridge's answers, where it places calls.

The real ``Scheduler`` over an in-memory registry; only the node is scripted (``Scripted``: the bridge's
answer as a node would return it). The real node and sandbox are in tests/integration/test_mcp_stdio.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import pytest

from executors.errors import JobRejected
from executors.inner import Answerer
from executors.spec import MCP_TOKEN_SECRET, Grants, Job, Result
from gateway.kernel.config.sections.mcp import McpServer
from gateway.kernel.config.sections.tools import SchedulerSettings, ToolsSettings
from gateway.kernel.context import Principal, RequestContext
from middleware.tools.mcp.stdio import McpServerFailed, StdioUpstream
from routers.scheduler import MemoryNodeRegistry, NodeInfo, NoEligibleNode, Scheduler

TOKEN = "tok-subject-a-91c2"
COMMAND = ("node", "/opt/mcp/server.js", "/scratch")
TOOLS_ANSWER = {"ok": True, "protocol": "2025-11-25", "result": {"tools": [
    {"name": "read", "description": "Read a file", "inputSchema": {"type": "object"},
     "annotations": {"readOnlyHint": True}},
    {"name": "write", "inputSchema": {"type": "object", "required": ["path"]}},
]}}


class Scripted:
    """A ``NodeRunner`` answering every job with ``result`` (or raising ``error``); it keeps the jobs."""

    def __init__(self, answer: Mapping[str, Any] | None = None, **result: Any) -> None:
        stdout = json.dumps(answer) + "\n" if answer is not None else ""
        self.result = Result(**{"exit_code": 0, "stdout": stdout, "stderr": "", "driver": "bwrap",
                                "duration_ms": 5.0, **result})
        self.error: Exception | None = None
        self.jobs: list[tuple[str, Job]] = []

    async def run(self, node: NodeInfo, job: Job, answer: Answerer | None = None) -> Result:
        self.jobs.append((node.id, job))
        if self.error is not None:
            raise self.error
        return self.result


def node(node_id: str, free: int = 2, seen: float | None = None) -> NodeInfo:
    return NodeInfo(node_id, f"https://{node_id}", {}, ("bwrap",), ("python", "mcp_stdio"), (), 2, free,
                    time.time() if seen is None else seen)


async def upstream(runner: Scripted, *nodes: NodeInfo, tools: ToolsSettings | None = None,
                   **server: Any) -> tuple[StdioUpstream, MemoryNodeRegistry]:
    registry = MemoryNodeRegistry(15.0)
    for n in nodes or (node("n1"),):
        await registry.upsert(n)
    scheduler = Scheduler(registry, runner, SchedulerSettings())
    config = McpServer.model_validate({"name": "fs", "command": COMMAND, **server})
    return StdioUpstream(config, scheduler, tools or ToolsSettings()), registry


def ctx(tenant: str = "acme") -> RequestContext:
    return RequestContext("req 1/x", "chat", "", {}, {}, principal=Principal(tenant, "key-1"))


def later(seconds: float = 60) -> float:
    return time.monotonic() + seconds


async def call(up: StdioUpstream, tool: str = "read", tenant: str = "acme", token: str | None = None,
               grants: Grants | None = None) -> Any:
    return await up.call_tool(ctx(tenant), tool, {"path": "/scratch/a"}, token=token, grants=grants or Grants(),
                              deadline=later())


async def test_the_job_carries_the_command_the_operation_and_the_token_only_as_a_secret_file() -> None:
    runner = Scripted({"ok": True, "result": {"content": [{"type": "text", "text": "hi"}]}})
    up, _ = await upstream(runner, options={"limits": {"wall_seconds": 20, "output_bytes": 10_000}},
                           token_env="GITHUB_TOKEN")
    await call(up, token=TOKEN, grants=Grants(egress=("api.example.com",)))
    ((where, job),) = runner.jobs
    op = json.loads(job.stdin)
    assert where == "n1" and job.runtime == "mcp_stdio" and job.argv == COMMAND and not job.code
    assert op == {"op": "call_tool", "name": "read", "arguments": {"path": "/scratch/a"}, "timeout_s": 19.0,
                  "max_bytes": 5000, "token_env": "GITHUB_TOKEN"}
    assert job.grants.secrets == {MCP_TOKEN_SECRET: TOKEN} and job.grants.secret_files == (MCP_TOKEN_SECRET,)
    assert job.grants.egress == ("api.example.com",)
    assert TOKEN not in json.dumps([job.argv, job.stdin, dict(job.env)])
    assert job.workspace == "mcp-fs" and job.tenant == "acme" and job.id.startswith("req_1_x-mcp-")
    assert job.limits.wall_seconds == 20 and job.limits.output_bytes == 10_000


async def test_the_wall_limit_never_outlasts_the_deadline() -> None:
    runner = Scripted({"ok": True, "result": {"content": []}})
    up, _ = await upstream(runner, options={"limits": {"wall_seconds": 300}})
    await up.call_tool(ctx(), "read", {}, token=None, grants=Grants(), deadline=later(10))
    job = runner.jobs[0][1]
    assert 9 < job.limits.wall_seconds <= 10 and json.loads(job.stdin)["timeout_s"] < job.limits.wall_seconds
    assert not job.grants.secrets and not job.grants.secret_files  # no token: no secret


async def test_a_static_credential_comes_from_tools_secrets_but_never_a_brokered_one() -> None:
    tools = ToolsSettings.model_validate({"secrets": {
        "FS_KEY": "static-value-1", "BROKERED": {"value": "node-only", "header": "Authorization", "hosts": ["x.io"]}}})
    runner = Scripted({"ok": True, "result": {"content": []}})
    plain, _ = await upstream(runner, tools=tools, credential="static", secret="FS_KEY")
    brokered, _ = await upstream(runner, tools=tools, credential="static", secret="BROKERED")
    await call(plain)
    await call(brokered)
    assert runner.jobs[0][1].grants.secrets == {MCP_TOKEN_SECRET: "static-value-1"}
    assert not runner.jobs[1][1].grants.secrets


async def test_tools_are_listed_as_upstream_tools_and_filtered_by_allowed_tools() -> None:
    up, _ = await upstream(Scripted(TOOLS_ANSWER))
    tools = await up.list_tools(ctx(), None, later())
    assert [(t.server, t.name, t.description) for t in tools] == [("fs", "read", "Read a file"), ("fs", "write", "")]
    assert tools[0].annotations == {"readOnlyHint": True} and tools[1].input_schema["required"] == ["path"]
    runner = Scripted(TOOLS_ANSWER)
    only_read, _ = await upstream(runner, allowed_tools=["read"])
    assert [t.name for t in await only_read.list_tools(ctx(), None, later())] == ["read"]
    refused = await call(only_read, "write")
    assert refused.is_error and "not among its allowed_tools" in refused.text() and len(runner.jobs) == 1


async def test_a_call_result_keeps_content_structure_node_and_driver() -> None:
    answer = {"ok": True, "protocol": "2025-06-18", "result": {
        "content": [{"type": "text", "text": "a"}, {"type": "image", "data": "AA==", "mimeType": "image/png"}],
        "structuredContent": {"n": 1}, "isError": False}}
    result = await call((await upstream(Scripted(answer)))[0])
    assert result.text() == "a\n[image]" and result.structured == {"n": 1} and not result.is_error
    assert result.node == "n1" and result.driver == "bwrap"
    assert result.meta["protocol"] == "2025-06-18" and result.meta["job"].startswith("req_1_x-mcp-")


async def test_a_json_rpc_error_to_a_call_is_an_error_result_the_model_can_read() -> None:
    runner = Scripted({"ok": False, "error": "rpc", "code": -32602, "message": "tools/call: unknown tool 'nope'"})
    result = await call((await upstream(runner))[0], "nope")
    assert result.is_error and result.text() == "MCP error -32602: tools/call: unknown tool 'nope'"
    assert result.node == "n1"
    with pytest.raises(McpServerFailed, match="rpc"):
        await (await upstream(runner))[0].list_tools(ctx(), None, later())


@pytest.mark.parametrize(("runner", "message"), [
    (Scripted({"ok": False, "error": "exited", "message": "the server exited with code 3"}),
     "failed on node n1 (exited): the server exited with code 3"),
    (Scripted(None, exit_code=1, stderr="Traceback: bridge broke"), "no answer from its sandbox on node n1 "
     "(exit code 1): Traceback: bridge broke"),
    (Scripted(None, exit_code=-9, timed_out=True, limit="wall"), "stopped by its wall-clock limit"),
    (Scripted(None, exit_code=-9, truncated=True, limit="output"), "stopped by its output limit"),
    (Scripted({"ok": True, "result": {"tools": [{"description": "no name"}]}}), "listed a tool without a name"),
    (Scripted({"ok": True, "result": {"tools": "many"}}), "listed no tools array"),
])
async def test_failures_are_mcp_server_failed(runner: Scripted, message: str) -> None:
    up, _ = await upstream(runner)
    with pytest.raises(McpServerFailed) as failed:
        await up.list_tools(ctx(), None, later())
    assert message in failed.value.message and failed.value.status == 502


async def test_a_job_the_node_refuses_is_mcp_server_failed_with_the_schedulers_code() -> None:
    runner = Scripted()
    runner.error = JobRejected("no available driver runs runtime 'mcp_stdio'")
    with pytest.raises(McpServerFailed) as failed:
        await call((await upstream(runner))[0])
    assert failed.value.code == "tool_job_rejected" and "no available driver" in failed.value.message


async def test_without_nodes_there_is_no_eligible_node() -> None:
    up = StdioUpstream(McpServer(name="fs", command=COMMAND), None, ToolsSettings())
    with pytest.raises(NoEligibleNode):
        await up.list_tools(ctx(), None, later())


async def test_a_tenants_calls_follow_its_workspace_while_its_node_lives() -> None:
    runner = Scripted({"ok": True, "result": {"content": []}})
    up, registry = await upstream(runner, node("n1"), node("n2"))
    await call(up)  # equal load: n1 by id, which now holds acme's workspace
    await registry.upsert(node("n1", free=1))  # busier: a new tenant goes to n2, acme stays on n1
    await call(up, tenant="globex")
    await call(up)
    await registry.upsert(node("n1", seen=0.0))  # n1 is gone: acme's next call starts over on n2
    await call(up)
    assert [where for where, _ in runner.jobs] == ["n1", "n2", "n1", "n2"]


def test_a_server_without_a_command_is_refused() -> None:
    with pytest.raises(ValueError, match="no command"):
        StdioUpstream(McpServer(name="web", url="https://mcp.example.com/mcp"), None, ToolsSettings())
