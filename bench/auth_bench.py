"""Cost of the authn + authz + limits chain (issue 3), in process, per request.

Runs the real stages (static key lookup, embedded Rego policy with its decision cache and decision
log, the limiter and the finalizer that reconciles tokens and records spend) around a terminal
that returns a canned reply, and compares with the terminal alone (the core, no chain):

  core            terminal only
  chain-embedded  authn + authz + limits, in-process limiter (the default)
  chain-nocache   same, decision cache off (every request evaluates Rego)
  chain-redis     same as embedded, limiter and ledger on a real Redis (valkey/redis-server, unix socket)

Requests run 64 at a time (as the c=64 wrk cell), so the figure is CPU per request at
saturation, Redis round trips overlapping. It prints µs per request and the projected req/s
of one gateway core, 1 / (1/core_rps + chain),
where core_rps is the gateway's c=64 non-stream number from the latest bench/results/core-*.json
(or --core-rps). Goal: the default chain keeps >= 3,500 req/s on one core.

    python bench/auth_bench.py [--requests 20000] [--core-rps 5000] [--no-redis]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.kernel.chain import Handler, compose  # noqa: E402
from gateway.kernel.config import settings_from_mapping  # noqa: E402
from gateway.kernel.context import Reply, RequestContext, Usage  # noqa: E402
from gateway.kernel.observability.logging import JsonLog  # noqa: E402
from gateway.kernel.observability.metrics import Metrics  # noqa: E402
from gateway.wiring import build_services  # noqa: E402
from middleware.stages import build_stage  # noqa: E402

KEY = "sk-bench-0123456789abcdef"
BODY = {"model": "bench-chat", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 16}
GOAL_RPS = 3500.0
CONCURRENCY = 64  # requests in flight, as in the c=64 wrk cell: Redis round trips overlap


async def terminal(ctx: RequestContext) -> Reply:
    ctx.usage = Usage(3, 5, 8)
    return Reply(body=b"{}")


def settings(redis_url: str | None, cache: bool) -> Any:
    return settings_from_mapping({
        "chain": ["authn", "authz", "limits"],
        "auth": {"static_keys": [{"key": KEY, "key_id": "bench", "tenant": "bench", "roles": ["analyst"],
                                  "rpm": 10**9, "tpm": 10**12}]},
        "limits": {"tenants": {"*": {"rpm": 10**9}}, "prices": {"*": {"input_per_1m": 1, "output_per_1m": 2}}},
        "policy": {"cache_size": 4096 if cache else 0, "reload_interval_s": 0},
        "redis": {"url": redis_url} if redis_url else {},
    })


async def measure(handler: Handler, n: int) -> float:
    headers = {"authorization": f"Bearer {KEY}"}

    async def one() -> None:
        ctx = RequestContext("req", "chat", "bench-chat", dict(BODY), headers)
        await handler(ctx)
        for finalizer in ctx.finalizers:
            await finalizer(ctx)

    async def worker(count: int) -> None:
        for _ in range(count):
            await one()

    await worker(min(2000, n))
    start = time.perf_counter()
    await asyncio.gather(*(worker(n // CONCURRENCY) for _ in range(CONCURRENCY)))
    return (time.perf_counter() - start) / (n // CONCURRENCY * CONCURRENCY) * 1e6


async def chain_us(redis_url: str | None, cache: bool, n: int) -> float:
    resources = AsyncExitStack()
    s = settings(redis_url, cache)
    services = await build_services(s, JsonLog(io.BytesIO()), Metrics(), resources)
    stages = [build_stage(name, services) for name in s.chain]
    try:
        return await measure(compose(stages, terminal), n)
    finally:
        await resources.aclose()


def start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    from tests.support.services import redis_binary

    binary = redis_binary()
    if binary is None:
        return None
    sock = directory / "redis.sock"
    proc = subprocess.Popen([binary, "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not sock.exists():
        time.sleep(0.02)
    return proc, f"unix://{sock}"


def core_rps(explicit: float | None) -> tuple[float, str]:
    if explicit:
        return explicit, "--core-rps"
    results = sorted((ROOT / "bench" / "results").glob("core-*.json"))
    for path in reversed(results):
        cells = json.loads(path.read_text()).get("cells", [])
        for cell in cells:
            if (cell["target"], cell["mode"], cell["concurrency"]) == ("gateway", "chat", 64) and cell["rps"]:
                return float(cell["rps"]), path.name
    return 5000.0, "assumed"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--core-rps", type=float)
    parser.add_argument("--no-redis", action="store_true")
    args = parser.parse_args()
    rows: list[tuple[str, float]] = [("core", await measure(terminal, args.requests))]
    rows.append(("chain-embedded", await chain_us(None, True, args.requests)))
    rows.append(("chain-nocache", await chain_us(None, False, args.requests)))
    with tempfile.TemporaryDirectory() as tmp:
        started = None if args.no_redis else start_redis(Path(tmp))
        if started is not None:
            try:
                rows.append(("chain-redis", await chain_us(started[1], True, args.requests // 4)))
            finally:
                started[0].terminate()
                started[0].wait(5)
    base, source = core_rps(args.core_rps)
    print(f"core gateway c=64 non-stream: {base:,.0f} req/s ({source})")
    print(f"{'variant':16} {'µs/request':>11} {'added µs':>9} {'projected req/s':>16}  goal")
    core = rows[0][1]
    for name, us in rows:
        added = max(0.0, us - core)
        projected = 1 / (1 / base + added / 1e6)
        verdict = "" if name == "core" else ("PASS" if projected >= GOAL_RPS else "FAIL")
        print(f"{name:16} {us:11.1f} {added:9.1f} {projected:16,.0f}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
