"""Routing benchmark (issue 5).

1. The routing decision's cost per request with 10 deployments: needs detection, plan, locality and
   ``Selector.pick`` (pure code, no I/O), many iterations, p50 and mean. Goal: <= 20 us.
2. Failover: three simulators behind a real gateway process, many concurrent requests through the
   ``openai`` async client, one simulator SIGKILLed mid-run; requests sent, failed and retried.

    python bench/routing_bench.py            # both parts
    python bench/routing_bench.py --micro    # the decision only
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.kernel.config import settings_from_mapping  # noqa: E402
from gateway.kernel.context import RequestContext  # noqa: E402
from routers.registry import ModelRegistry  # noqa: E402
from routers.router import Router  # noqa: E402
from tests.support.processes import ServerProcess, python_module  # noqa: E402


class _NullBackend:
    def __init__(self, name: str) -> None:
        self.name = name


def _micro_config() -> dict[str, Any]:
    backends = [
        {"name": f"b{i}", "base_url": "http://127.0.0.1:1/v1", "labels": {"region": f"r{i % 3}", "node": f"n{i}"}}
        for i in range(10)
    ]
    deployments = [{"backend": f"b{i}", "weight": 1 + i % 2, "cost": {"input_per_mtok": i}} for i in range(10)]
    model = {"name": "m", "deployments": deployments, "capabilities": ["tools", "json_mode"], "context_window": 8192}
    return {"backends": backends, "models": [model], "routing": {"local_labels": {"node": "n3"}}}


def _ctx(locality: bool) -> RequestContext:
    body = {"model": "m", "messages": [{"role": "user", "content": "Say hello in five words."}], "max_tokens": 64}
    headers = {"x-llmops-region": "r1"} if locality else {}
    ctx = RequestContext("id", "chat", "m", body, headers)
    if locality:
        ctx.hints.allowed_regions = frozenset(("r1", "r2"))
    return ctx


def _timed(fn: Any, iterations: int) -> tuple[float, float]:
    samples = []
    batch = 100
    for _ in range(iterations // batch):
        t0 = time.perf_counter_ns()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter_ns() - t0) / batch / 1000)
    return statistics.median(samples), statistics.fmean(samples)


def micro(iterations: int) -> list[tuple[str, float, float]]:
    settings = settings_from_mapping(_micro_config())
    backends: Any = {f"b{i}": _NullBackend(f"b{i}") for i in range(10)}
    registry = ModelRegistry.from_settings(settings, backends)
    router = Router(registry, settings.routing)
    rows = []
    pick = router.selector.pick
    for label, locality in (("no hints", False), ("region header + policy regions + sidecar", True)):
        ctx = _ctx(locality)

        def decision(c: RequestContext = ctx) -> None:
            needs, tiers, _, loc = router.decide(c)
            assert pick(tiers, needs, loc, (), 0.0) is not None

        rows.append((f"decide + pick, 10 deployments, {label}", *_timed(decision, iterations)))
    needs, tiers, _, loc = router.decide(_ctx(False))
    rows.append(("Selector.pick only, no hints", *_timed(lambda: pick(tiers, needs, loc, (), 0.0), iterations)))
    return rows


def _gateway_config(urls: list[str]) -> dict[str, Any]:
    backends = [{"name": f"sim{i}", "base_url": f"{u}/v1"} for i, u in enumerate(urls)]
    return {
        "server": {"access_log": False},
        "backends": backends,
        "models": [{"name": "chat", "deployments": [{"backend": b["name"]} for b in backends]}],
        "routing": {"circuit": {"failures": 3, "open_s": 2.0}, "health": {"interval_s": 1.0}},
    }


async def drive(base_url: str, total: int, concurrency: int, kill: Any, kill_after: int) -> tuple[int, int]:
    """Send ``total`` chat requests, ``concurrency`` at a time; call ``kill()`` after ``kill_after``."""
    import openai

    client = openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="k", max_retries=0, timeout=30)
    sent = failed = 0
    queue = iter(range(total))

    async def worker() -> None:
        nonlocal sent, failed
        for i in queue:
            if i == kill_after:
                kill()
            sent += 1
            try:
                await client.chat.completions.create(model="chat", messages=[{"role": "user", "content": f"hi {i}"}])
            except openai.OpenAIError:
                failed += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await client.close()
    return sent, failed


def _retries(metrics_text: str) -> int:
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("llmops_route_retries_total"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def failover(total: int, concurrency: int) -> dict[str, int]:
    import httpx
    import yaml

    sims = [ServerProcess(python_module("simulator", "--port", "0", "--name", f"s{i}", "--ttft-ms", "5")).start()
            for i in range(3)]
    cfg = Path(tempfile.mkdtemp()) / "gateway.yaml"
    cfg.write_text(yaml.safe_dump(_gateway_config([s.url for s in sims])))
    gateway = ServerProcess(python_module("gateway.cli", "serve", "--config", str(cfg), "--port", "0"), stream="stderr")
    gateway.start()
    try:
        victim = sims[1]
        assert victim.proc is not None
        pid = victim.proc.pid
        sent, failed = asyncio.run(drive(gateway.url, total, concurrency, lambda: os.kill(pid, signal.SIGKILL),
                                         total // 3))
        retried = _retries(httpx.get(f"{gateway.url}/metrics").text)
    finally:
        gateway.stop()
        for s in sims:
            s.stop()
    return {"sent": sent, "failed": failed, "retried": retried}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--micro", action="store_true", help="only the decision microbenchmark")
    parser.add_argument("--iterations", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    print("| routing decision | p50 us | mean us |\n|---|---|---|")
    for label, p50, mean in micro(args.iterations):
        print(f"| {label} | {p50:.2f} | {mean:.2f} |")
    if not args.micro:
        result = failover(args.requests, args.concurrency)
        print("\n| failover (1 of 3 sims SIGKILLed) | sent | failed | retried |\n|---|---|---|---|")
        print(f"| c={args.concurrency} | {result['sent']} | {result['failed']} | {result['retried']} |")


if __name__ == "__main__":
    main()
