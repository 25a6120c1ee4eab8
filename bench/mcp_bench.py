"""MCP benchmark (issue 13): the gateway's ``/mcp`` beside the same work without MCP, in one run.

One gateway (authn + tools stages, the Rego policy, access log off) with the simulator as its model
backend, and one ``llmops node`` (``--driver``, bwrap by default). N sequential requests per row (c=1):

* node        the python job sent straight to the node (signed ``NodeClient``): the sandbox's cost;
* mcp call    ``tools/call`` python through ``POST /mcp`` (authn, policy, scheduling, the SDK's transport),
              as 2025-11-25 (the SDK's stateless legacy transport) and as 2026-07-28 (its single exchange);
* models      ``GET /v1/models`` (cached per key);
* mcp list    ``tools/list`` through ``POST /mcp`` (cached per key), both revisions;
* echo direct ``tools/call`` of ``@modelcontextprotocol/server-everything``'s ``echo`` (npm, run with node in
              its streamable-HTTP mode), posted straight to it on one initialized session;
* echo /mcp   the same call through the gateway's ``POST /mcp`` as ``everything__echo`` (authn, the policy's
              tool_call decision, the upstream session the gateway keeps, redaction), both revisions.

The MCP requests are plain HTTP POSTs of fixed JSON-RPC bodies (the server is stateless, so no handshake
is needed), read to the end of their SSE reply: the client's own cost stays out. Prints p50 / p90 (ms),
the gateway's CPU per request (user + sys of its process tree over the row, µs), what ``/mcp`` adds
to the node job's p50, and what it adds to a call of the upstream MCP server.

    python bench/mcp_bench.py [--runs 200] [--driver bwrap]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import _common as c  # noqa: E402

from executors.node.client import NodeClient  # noqa: E402
from executors.spec import Job  # noqa: E402
from routers.scheduler.enrollment import NodeBook  # noqa: E402
from tests.support.configs import sim_config  # noqa: E402
from tests.support.mcp_servers import EVERYTHING, start_everything  # noqa: E402
from tests.support.processes import ServerProcess, python_module  # noqa: E402

KEY, ADMIN_KEY = "sk-bench-mcp", "sk-bench-admin"
CODE = "print(6 * 7)"
HEADERS = {"authorization": f"Bearer {KEY}", "content-type": "application/json",
           "accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25"}
MODERN = {**HEADERS, "mcp-protocol-version": "2026-07-28"}
ENVELOPE = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "python", "arguments": {"code": CODE}}}
LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
ECHO_ARGS = {"message": "bench"}
UPSTREAM_CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                 "params": {"name": "everything__echo", "arguments": ECHO_ARGS}}
Row = tuple[list[float], float]  # latencies (ms), gateway CPU per request (µs)


def start_stack(sim: ServerProcess, driver: str, workdir: Path, upstream: str) -> tuple[ServerProcess, ServerProcess]:
    keys = [{"key": KEY, "key_id": "bench", "tenant": "bench", "roles": ["agent"]},
            {"key": ADMIN_KEY, "key_id": "admin", "tenant": "ops", "roles": ["admin"]}]
    tools = {"enrollment": {"enabled": True, "state_dir": str(workdir / "cp")},
             "options": {"python": {"driver": driver}}}
    allowed = workdir / "mcp-policy.json"  # the policy allows the upstream server (deny by default)
    allowed.write_text(json.dumps({"policy": {"mcp": {"servers": {"everything": {}}}}}))
    config = sim_config(sim.url, "sim-chat", chain=["authn", "tools"], auth={"static_keys": keys}, tools=tools,
                        server={"access_log": False}, mcp={"servers": [{"name": "everything", "url": upstream}]},
                        policy={"paths": [str(ROOT / "config" / "policies"), str(allowed)]})
    path = workdir / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    gateway = ServerProcess(python_module("gateway.cli", "serve", "--config", str(path), "--port", "0"),
                            stream="stderr").start()
    token = httpx.post(f"{gateway.url}/admin/nodes/tokens", json={"node_id": "bench-mcp"},
                       headers={"authorization": f"Bearer {ADMIN_KEY}"}).json()["token"]
    node = ServerProcess(python_module("gateway.cli", "node", "--port", "0", "--control-plane", gateway.url,
                                       "--state-dir", str(workdir / "node"), "--drivers", driver,
                                       "--node-id", "bench-mcp", "--heartbeat-seconds", "0.5", "--pool-size", "2"),
                         env={"LLMOPS_JOIN_TOKEN": token}).start(timeout_s=90)
    return gateway, node


async def row(gateway: ServerProcess, runs: int, fn: Callable[[], Awaitable[None]]) -> Row:
    await fn()  # warm up
    assert gateway.proc is not None
    before = c.tree_cpu_seconds(gateway.proc.pid)
    samples: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples, (c.tree_cpu_seconds(gateway.proc.pid) - before) / runs * 1e6


async def ready(http: httpx.AsyncClient) -> None:
    """Until the node's heartbeat registered it, calls answer an error (no node)."""
    deadline = time.monotonic() + 30
    while '"isError":false' not in (await http.post("/mcp", json=CALL, headers=HEADERS)).text:
        if time.monotonic() > deadline:
            raise c.BenchError("no tool node became ready")
        await asyncio.sleep(0.3)


async def upstream_session(http: httpx.AsyncClient, url: str) -> dict[str, str]:
    """One initialized 2025-11-25 session on the upstream, as a client calling it directly keeps one."""
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}}
    headers = {k: v for k, v in HEADERS.items() if k != "authorization"}
    reply = await http.post(url, json=init, headers=headers)
    headers["mcp-session-id"] = reply.headers["mcp-session-id"]
    await http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
    return headers


async def measure(gateway: ServerProcess, node: ServerProcess, runs: int, cp_state: Path,
                  upstream: str) -> dict[str, Row]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as http:
        await ready(http)
        direct_headers = await upstream_session(http, upstream)
        echoed = '"text":"Echo: bench"'

        async def echo_direct() -> None:
            body = {**UPSTREAM_CALL, "params": {"name": "echo", "arguments": ECHO_ARGS}}
            reply = await http.post(upstream, json=body, headers=direct_headers)
            assert reply.status_code == 200 and echoed in reply.text, reply.text

        async def mcp(body: dict[str, Any], expect: str, modern: bool = False) -> None:
            headers = HEADERS
            if modern:  # the 2026-07-28 revision: the envelope in _meta, the method (and name) in headers too
                body = {**body, "params": {**body.get("params", {}), "_meta": ENVELOPE}}
                name = body["params"].get("name")
                headers = {**MODERN, "mcp-method": body["method"], **({"mcp-name": name} if name else {})}
            reply = await http.post("/mcp", json=body, headers=headers)
            assert reply.status_code == 200 and expect in reply.text, reply.text

        async def models() -> None:
            assert (await http.get("/v1/models", headers={"authorization": f"Bearer {KEY}"})).status_code == 200

        book = NodeBook.open(str(cp_state))
        enrolled = book.get("bench-mcp")
        assert enrolled is not None
        listed = (await http.get("/admin/nodes", headers={"authorization": f"Bearer {ADMIN_KEY}"})).json()
        boot = next(n["boot"] for n in listed["data"] if n["node_id"] == "bench-mcp")
        counter = iter(range(10**9))
        async with NodeClient(node.url, book.key, enrolled.pin(), boot=boot) as nodes:
            async def direct() -> None:
                result = await nodes.run(Job(id=f"b{next(counter)}", tool="python", runtime="python", code=CODE))
                assert result.stdout == "42\n"

            answer, tool = '"text":"42\\n"', '"name":"python"'
            return {"echo direct": await row(gateway, runs, echo_direct),
                    "echo /mcp": await row(gateway, runs, lambda: mcp(UPSTREAM_CALL, echoed)),
                    "echo /mcp (2026)": await row(gateway, runs, lambda: mcp(UPSTREAM_CALL, echoed, modern=True)),
                    "node": await row(gateway, runs, direct),
                    "mcp call": await row(gateway, runs, lambda: mcp(CALL, answer)),
                    "mcp call (2026)": await row(gateway, runs, lambda: mcp(CALL, answer, modern=True)),
                    "models": await row(gateway, runs, models),
                    "mcp list": await row(gateway, runs, lambda: mcp(LIST, tool)),
                    "mcp list (2026)": await row(gateway, runs, lambda: mcp(LIST, tool, modern=True))}


def table(rows: dict[str, Row]) -> str:
    def p(samples: list[float], q: int) -> float:
        return statistics.quantiles(samples, n=10)[q - 1] if len(samples) > 1 else samples[0]

    lines = [c.markdown_table(["row", "p50 ms", "p90 ms", "gateway CPU µs/req"],
                              [[name, f"{statistics.median(s):.2f}", f"{p(s, 9):.2f}", f"{cpu:.0f}"]
                               for name, (s, cpu) in rows.items()], right=(1, 2, 3))]
    node = statistics.median(rows["node"][0])
    for name in ("mcp call", "mcp call (2026)"):
        lines.append(f"\n{name}: /mcp adds {statistics.median(rows[name][0]) - node:.2f} ms p50 to the node job "
                     "(authn, the tool_call decision, placement, the job's signing and TLS, the SDK's transport).")
    direct = statistics.median(rows["echo direct"][0])
    for name in ("echo /mcp", "echo /mcp (2026)"):
        lines.append(f"\n{name}: /mcp adds {statistics.median(rows[name][0]) - direct:.2f} ms p50 to calling "
                     "server-everything directly (authn, the tool_call decision, the gateway's upstream session, "
                     "redaction, the SDK's transport both ways).")
    return "\n".join(lines)


def npm_install(where: Path, spec: str) -> Path:
    where.mkdir(parents=True)
    (where / "package.json").write_text('{"private": true, "type": "module"}\n')
    subprocess.run(["npm", "install", "--no-save", "--no-audit", "--no-fund", "--loglevel=error", spec], cwd=where,
                   check=True, timeout=600)
    return where


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--driver", default="bwrap")
    args = parser.parse_args()
    sim = ServerProcess(python_module("simulator", "--host", "127.0.0.1", "--port", "0")).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            everything = start_everything(npm_install(Path(tmp) / "npm", EVERYTHING))
            upstream = f"{everything.url}/mcp"
            gateway, node = start_stack(sim, args.driver, Path(tmp), upstream)
            try:
                rows = asyncio.run(measure(gateway, node, args.runs, Path(tmp) / "cp", upstream))
            finally:
                node.stop()
                gateway.stop()
                everything.stop()
    finally:
        sim.stop()
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
