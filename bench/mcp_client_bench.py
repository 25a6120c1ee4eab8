"""The gateway's client side of an upstream MCP call (issue 13): ``HttpUpstream`` on its lean
handshake-era session (``middleware/tools/mcp/wire.py``) beside the same upstream through the official
SDK's ``Client`` (what it falls back to), in one process, rounds alternating.

Both call ``echo`` of ``@modelcontextprotocol/server-everything`` (npm, run with node, streamable HTTP)
on one kept session; prints this process's CPU per call (user + sys, µs: the client's own cost) and
the p50 latency, each the median over the rounds.

    python bench/mcp_client_bench.py [--rounds 10] [--calls 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import _common as c  # noqa: E402
from mcp_bench import npm_install  # noqa: E402

from executors.spec import Grants  # noqa: E402
from gateway.kernel.config.sections.mcp import McpServer  # noqa: E402
from gateway.kernel.context import RequestContext  # noqa: E402
from middleware.tools.mcp.http import HttpUpstream  # noqa: E402
from tests.support.mcp_servers import EVERYTHING, start_everything  # noqa: E402

CTX = RequestContext("bench", "chat", "", {}, {})


async def call(up: HttpUpstream) -> None:
    result = await up.call_tool(CTX, "echo", {"message": "bench"}, token=None, grants=Grants(),
                                deadline=time.monotonic() + 30)
    assert result.text() == "Echo: bench", result


async def measure(url: str, rounds: int, calls: int) -> dict[str, tuple[list[float], list[float]]]:
    lean = HttpUpstream(McpServer(name="everything", url=url))
    sdk = HttpUpstream(McpServer(name="everything", url=url))
    sdk._handshake = False  # as after a server refused the handshake: the SDK's Client
    clients = {"lean session": lean, "SDK Client": sdk}
    out: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in clients}
    try:
        for up in clients.values():
            for _ in range(20):
                await call(up)
        for rnd in range(rounds):
            order = list(clients.items()) if rnd % 2 == 0 else list(reversed(clients.items()))
            for name, up in order:
                cpu, latencies = out[name]
                started = time.process_time()
                for _ in range(calls):
                    t = time.perf_counter()
                    await call(up)
                    latencies.append((time.perf_counter() - t) * 1000)
                cpu.append((time.process_time() - started) / calls * 1e6)
    finally:
        await lean.aclose()
        await sdk.aclose()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        everything = start_everything(npm_install(Path(tmp) / "npm", EVERYTHING))
        try:
            rows = asyncio.run(measure(f"{everything.url}/mcp", args.rounds, args.calls))
        finally:
            everything.stop()
    print(c.markdown_table(["client", "CPU µs/call", "p50 ms"],
                           [[name, f"{statistics.median(cpu):.0f}", f"{statistics.median(lat):.2f}"]
                            for name, (cpu, lat) in rows.items()], right=(1, 2)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
