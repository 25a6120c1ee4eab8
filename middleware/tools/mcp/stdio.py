"""A stdio MCP server as an ``Upstream``: each operation is one sandboxed ``mcp_stdio`` job on a node.

The job carries the server's ``command`` as its argv and the operation (``list_tools``, or
``call_tool`` with name and arguments) as stdin; on the node, the bridge (``executors/mcp_bridge.py``)
starts the server inside the sandbox, speaks MCP with it over stdio and prints one JSON answer. So
the scheduler, signing, limits, workspaces, the egress proxy and traces all apply as to any tool job:

- **What the server sees**: its workspace at ``/scratch`` (``mcp-<server>``, per tenant, kept on the
  node between calls: a tenant's calls follow the node that holds it while that node is live), the
  system directories every sandbox gets, and read-only the directories the node's operator allows
  for MCP server code (``llmops node --mcp-path DIR``). Nothing else of the host; no network unless
  the policy granted egress (``grants.egress``: the node's egress proxy, as for any job).
- **Its credential**: the caller's ``token`` (or, with ``credential: static``, the secret
  ``tools.secrets[secret]``) travels as a granted secret: a read-only file in the sandbox that the
  bridge copies into the server's environment as ``token_env``. Never in an argv, redacted by the node
  from everything the job prints.
- **Failures**: a refused or failed job, a server that crashes, times out or answers garbage, and a
  JSON-RPC error to ``tools/list`` are ``McpServerFailed`` (a 502 unless the caller turns it into a tool
  error). A JSON-RPC error to ``tools/call`` (e.g. an unknown tool, bad arguments) is a result with
  ``is_error``, which the model can act on.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from executors.errors import JobRejected
from executors.spec import MCP_TOKEN_SECRET, Grants, Job, Limits, Result, Runtime
from gateway.kernel.config.sections.mcp import McpServer
from gateway.kernel.config.sections.tools import ToolsSettings
from gateway.kernel.context import RequestContext
from gateway.kernel.errors import UpstreamError
from gateway.kernel.mcp import UpstreamResult, UpstreamTool
from middleware.tools.jobs import job_tenant
from routers.scheduler import Dispatch, JobRefused, JobTimeout, NodeFailed, NoEligibleNode, Placement, Scheduler

RUNTIME: Runtime = "mcp_stdio"
WORKSPACE_PREFIX = "mcp-"
MIN_WALL_S = 0.5
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class McpServerFailed(UpstreamError):
    """A stdio MCP server gave no usable answer: its job was refused or failed on the node, or the server
    crashed, timed out or answered garbage. ``code`` says which (``mcp_server_failed`` or the scheduler's)."""

    default_code = "mcp_server_failed"


@dataclass(frozen=True, slots=True)
class Answer:
    """The bridge's JSON answer, and where the job ran."""

    server: str
    payload: Mapping[str, Any]
    node: str
    driver: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def rpc_error(self) -> bool:
        return self.payload.get("ok") is not True and self.payload.get("error") == "rpc"


class StdioUpstream:
    """``Upstream`` for an ``McpServer`` with a ``command``; ``scheduler`` None = no nodes (every call fails)."""

    def __init__(self, server: McpServer, scheduler: Scheduler | None, tools: ToolsSettings) -> None:
        if not server.command:
            raise ValueError(f"mcp server {server.name!r} has no command")
        self._server = server
        self._scheduler = scheduler
        self._tools = tools
        self._homes: dict[str, str] = {}  # tenant → the node holding its workspace of this server

    @property
    def name(self) -> str:
        return self._server.name

    async def list_tools(self, ctx: RequestContext, token: str | None, deadline: float) -> list[UpstreamTool]:
        answer = await self._run(ctx, {"op": "list_tools"}, token, Grants(), deadline, idempotent=True)
        tools = _result(answer).get("tools")
        if not isinstance(tools, list):
            raise McpServerFailed(f"MCP server {self.name!r} listed no tools array.")
        listed = [tool_of(self.name, raw) for raw in tools]
        return [tool for tool in listed if self._allowed(tool.name)]

    async def call_tool(
        self, ctx: RequestContext, tool: str, arguments: Mapping[str, Any], *, token: str | None, grants: Grants,
        deadline: float,
    ) -> UpstreamResult:
        if not self._allowed(tool):
            return _error_result(f"tool {tool!r} of MCP server {self.name!r} is not among its allowed_tools")
        op = {"op": "call_tool", "name": tool, "arguments": dict(arguments)}
        answer = await self._run(ctx, op, token, grants, deadline, idempotent=bool(self._server.options.idempotent))
        if answer.rpc_error:
            message = f"MCP error {answer.payload.get('code')}: {answer.payload.get('message')}"
            return replace(_error_result(message), node=answer.node, driver=answer.driver, meta=answer.meta)
        return result_of(answer, _result(answer))

    async def aclose(self) -> None:
        return None

    def _allowed(self, tool: str) -> bool:
        allowed = self._server.allowed_tools
        return allowed is None or tool in allowed

    async def _run(self, ctx: RequestContext, op: dict[str, Any], token: str | None, grants: Grants,
                   deadline: float, *, idempotent: bool) -> Answer:
        try:
            job = self._job(ctx, op, token, grants, deadline)
        except JobRejected as exc:
            raise McpServerFailed(f"MCP server {self.name!r}: invalid job: {exc}") from None
        dispatch = await self._dispatch(job, self._placement(ctx), idempotent, deadline)
        return answer_of(self.name, job, dispatch)

    def _job(self, ctx: RequestContext, op: dict[str, Any], token: str | None, grants: Grants, deadline: float) -> Job:
        """The node job for one operation: the server's argv, the op as stdin, the token as a secret file."""
        limits = self._limits(deadline)
        margin = min(1.0, limits.wall_seconds / 5)  # the bridge answers before the sandbox is killed
        stdin = {**op, "timeout_s": limits.wall_seconds - margin, "max_bytes": max(1024, limits.output_bytes // 2),
                 "token_env": self._server.token_env}
        request_id = _ID_UNSAFE.sub("_", ctx.request_id)[:80]
        return Job(
            id=f"{request_id}-mcp-{secrets.token_hex(4)}", tool=f"mcp:{self.name}", runtime=RUNTIME,
            argv=tuple(self._server.command), stdin=json.dumps(stdin), limits=limits,
            grants=with_token(grants, self._token(token)), workspace=WORKSPACE_PREFIX + self.name,
            driver=self._server.options.driver, tenant=job_tenant(ctx),
        )

    def _placement(self, ctx: RequestContext) -> Placement:
        options = self._server.options
        tenant = ctx.principal.tenant if ctx.principal is not None else ""
        return Placement(RUNTIME, tenant, options.driver, options.labels, None, options.dataset)

    def _limits(self, deadline: float) -> Limits:
        limits = Limits(**self._server.options.limits.model_dump(exclude_none=True))
        remaining = deadline - time.monotonic()
        return replace(limits, wall_seconds=max(MIN_WALL_S, min(limits.wall_seconds, remaining)))

    def _token(self, token: str | None) -> str | None:
        if token is not None or self._server.credential != "static" or self._server.secret is None:
            return token
        spec = self._tools.secrets.get(self._server.secret)
        return spec.get_secret_value() if spec is not None and not spec.brokered else None  # brokered: node-only

    async def _dispatch(self, job: Job, placement: Placement, idempotent: bool, deadline: float) -> Dispatch:
        """Run on the node holding the tenant's workspace while it is live, else wherever it fits."""
        if self._scheduler is None:
            raise NoEligibleNode("No tool nodes are configured (tools.node_secret or tools.nodes).")
        home = self._homes.get(job.tenant)
        try:
            try:
                dispatch = await self._scheduler.run(job, replace(placement, pin=home), idempotent=idempotent,
                                                     deadline=deadline)
            except NoEligibleNode:
                if home is None:
                    raise
                self._homes.pop(job.tenant, None)
                dispatch = await self._scheduler.run(job, placement, idempotent=idempotent, deadline=deadline)
        except (JobRefused, NodeFailed, JobTimeout) as exc:
            raise McpServerFailed(f"MCP server {self.name!r}: {exc.message}", code=exc.code,
                                  status=exc.status) from None
        self._homes[job.tenant] = dispatch.node.id
        return dispatch


def with_token(grants: Grants, token: str | None) -> Grants:
    """``grants`` plus the token as the secret file the bridge reads (never env or argv of the sandbox)."""
    if not token:
        return grants
    return replace(grants, secrets={**grants.secrets, MCP_TOKEN_SECRET: token},
                   secret_files=(*[n for n in grants.secret_files if n != MCP_TOKEN_SECRET], MCP_TOKEN_SECRET))


def answer_of(server: str, job: Job, dispatch: Dispatch) -> Answer:
    """The bridge's answer from the job's result; ``McpServerFailed`` when the job gave none."""
    result = dispatch.result
    meta = {"job": job.id, "duration_ms": result.duration_ms, "attempts": dispatch.attempts,
            "queued_ms": round(dispatch.queued_ms, 2)}
    if result.timed_out or result.limit:
        stopped = "wall-clock" if result.timed_out else result.limit
        raise McpServerFailed(f"MCP server {server!r} was stopped by its {stopped} limit on node "
                              f"{dispatch.node.id}{_tail(result)}")
    payload = _last_json(result.stdout)
    if payload is None:
        raise McpServerFailed(f"MCP server {server!r}: no answer from its sandbox on node {dispatch.node.id} "
                              f"(exit code {result.exit_code}){_tail(result)}")
    meta["protocol"] = payload.get("protocol")
    return Answer(server, payload, dispatch.node.id, result.driver, meta)


def _last_json(stdout: str) -> Mapping[str, Any] | None:
    lines = [line for line in stdout.splitlines() if line.strip()]
    try:
        payload = json.loads(lines[-1]) if lines else None
    except ValueError:
        return None
    return payload if isinstance(payload, dict) and isinstance(payload.get("ok"), bool) else None


def _tail(result: Result) -> str:
    tail = result.stderr.strip()[-300:]
    return f": {tail}" if tail else "."


def _result(answer: Answer) -> Mapping[str, Any]:
    """The MCP result object of a successful answer; ``McpServerFailed`` for a failed one."""
    payload = answer.payload
    result = payload.get("result")
    if payload.get("ok") is not True or not isinstance(result, dict):
        kind = payload.get("error", "failed")
        raise McpServerFailed(f"MCP server {answer.server!r} failed on node {answer.node} ({kind}): "
                              f"{payload.get('message', 'no result')}")
    return result


def tool_of(server: str, raw: Any) -> UpstreamTool:
    """One entry of ``tools/list`` as an ``UpstreamTool``; ``McpServerFailed`` when it is malformed."""
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise McpServerFailed(f"MCP server {server!r} listed a tool without a name.")
    schema = raw.get("inputSchema", {"type": "object"})
    annotations = raw.get("annotations")
    description = raw.get("description")
    if not isinstance(schema, dict) or not isinstance(annotations, dict | None):
        raise McpServerFailed(f"MCP server {server!r} listed tool {raw['name']!r} with a malformed schema.")
    return UpstreamTool(server, raw["name"], description if isinstance(description, str) else "", schema, annotations)


def result_of(answer: Answer, result: Mapping[str, Any]) -> UpstreamResult:
    """An MCP ``CallToolResult`` (as the bridge relayed it) as an ``UpstreamResult``."""
    content = result.get("content", [])
    if not isinstance(content, list) or not all(isinstance(block, dict) for block in content):
        raise McpServerFailed(f"MCP server {answer.server!r} answered tools/call with malformed content.")
    structured = result.get("structuredContent")
    return UpstreamResult(tuple(content), is_error=result.get("isError") is True,
                          structured=structured if isinstance(structured, dict) else None,
                          node=answer.node, driver=answer.driver, meta=answer.meta)


def _error_result(message: str) -> UpstreamResult:
    return UpstreamResult(({"type": "text", "text": message},), is_error=True)
