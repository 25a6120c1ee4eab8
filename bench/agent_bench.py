"""Agent-loop benchmark (issue 6): end-to-end tool-call latency through the gateway, per driver.

For each driver (bwrap, docker, wasm) a real gateway (authn + tools stages, Rego policy) with the
simulator as the model and one ``llmops node`` using only that driver. Per driver, N sequential runs of:

* raw    — the same python job sent straight to the node (signed ``NodeClient``): the driver's cost;
* chat   — a plain chat completion through the gateway (one model step, no tools);
* agent  — "What is the SHA-256 of ...?" with the python tool: 2 model steps + 1 sandboxed call.

Loop overhead = agent − raw − 2 × chat: what authorizing, scheduling and the loop itself add.

    python bench/agent_bench.py [--runs 30] [--drivers bwrap,docker,wasm]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import yaml
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from executors.node.client import NodeClient  # noqa: E402
from executors.spec import Job  # noqa: E402
from routers.scheduler.enrollment import NodeBook  # noqa: E402
from tests.support.configs import sim_config  # noqa: E402
from tests.support.processes import ServerProcess, python_module  # noqa: E402

ADMIN_KEY = "sk-bench-admin"
QUESTION = [{"role": "user", "content": 'What is the SHA-256 of "hello llmops"?'}]
PYTHON: Any = [{"type": "llmops_tool", "name": "python"}]
CODE = "import hashlib\nprint(hashlib.sha256(b'hello llmops').hexdigest())"


def start_stack(sim: ServerProcess, driver: str, workdir: Path) -> tuple[ServerProcess, ServerProcess]:
    keys = [{"key": "sk-bench", "key_id": "bench", "tenant": "bench", "roles": ["agent"]},
            {"key": ADMIN_KEY, "key_id": "admin", "tenant": "ops", "roles": ["admin"]}]
    tools = {"enrollment": {"enabled": True, "state_dir": str(workdir / f"cp-{driver}")},
             "options": {"python": {"driver": driver}}}
    config = sim_config(sim.url, "sim-chat", chain=["authn", "tools"], auth={"static_keys": keys}, tools=tools,
                        server={"access_log": False})
    path = workdir / f"gateway-{driver}.yaml"
    path.write_text(yaml.safe_dump(config))
    gateway = ServerProcess(python_module("gateway.cli", "serve", "--config", str(path), "--port", "0"),
                            stream="stderr").start()
    token = httpx.post(f"{gateway.url}/admin/nodes/tokens", json={"node_id": f"bench-{driver}"},
                       headers={"authorization": f"Bearer {ADMIN_KEY}"}).json()["token"]
    node = ServerProcess(python_module("gateway.cli", "node", "--port", "0", "--control-plane", gateway.url,
                                       "--state-dir", str(workdir / f"node-{driver}"), "--drivers", driver,
                                       "--node-id", f"bench-{driver}",
                                       "--heartbeat-seconds", "0.5", "--pool-size", "2"),
                         env={"LLMOPS_JOIN_TOKEN": token}).start(timeout_s=90)
    return gateway, node


async def timed(label: str, runs: int, fn: Callable[[], Awaitable[object]]) -> list[float]:
    samples: list[float] = []
    for _ in tqdm(range(runs), desc=label, file=sys.stderr, leave=False):
        started = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def wait_ready(client: openai.AsyncOpenAI) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            await client.chat.completions.create(model="sim-chat", messages=QUESTION, tools=PYTHON)  # type: ignore[arg-type]
            return
        except openai.APIStatusError as exc:
            if exc.status_code != 503 or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


async def measure(driver: str, gateway: ServerProcess, node: ServerProcess, runs: int,
                  cp_state: Path) -> dict[str, list[float]]:
    client = openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key="sk-bench", max_retries=0)
    await wait_ready(client)
    counter = iter(range(10**9))

    async def raw() -> object:
        return await nodes.run(Job(id=f"b{next(counter)}", tool="python", runtime="python", code=CODE, driver=driver))

    async def chat() -> object:
        return await client.chat.completions.create(model="sim-chat", messages=QUESTION)  # type: ignore[arg-type]

    async def agent() -> object:
        reply = await client.chat.completions.create(model="sim-chat", messages=QUESTION, tools=PYTHON)  # type: ignore[arg-type]
        assert "5e1a" in (reply.choices[0].message.content or "") or reply.choices[0].message.content
        return reply

    book = NodeBook.open(str(cp_state))  # the control plane's key and the node's pin, read from its state dir
    enrolled = book.get(f"bench-{driver}")
    assert enrolled is not None
    listed = httpx.get(f"{gateway.url}/admin/nodes", headers={"authorization": f"Bearer {ADMIN_KEY}"}).json()
    boot = next(n["boot"] for n in listed["data"] if n["node_id"] == enrolled.node_id)
    async with NodeClient(node.url, book.key, enrolled.pin(), boot=boot) as nodes:
        for fn in (raw, chat, agent):  # warm up pools and connections
            await fn()
        result = {name: await timed(f"{driver}:{name}", runs, fn)
                  for name, fn in (("raw", raw), ("chat", chat), ("agent", agent))}
    await client.close()
    return result


def row(driver: str, samples: dict[str, list[float]]) -> str:
    p50 = {k: statistics.median(v) for k, v in samples.items()}
    p90 = {k: statistics.quantiles(v, n=10)[-1] if len(v) > 1 else v[0] for k, v in samples.items()}
    overhead = p50["agent"] - p50["raw"] - 2 * p50["chat"]
    return (f"| {driver} | {p50['raw']:.1f} / {p90['raw']:.1f} | {p50['chat']:.1f} | "
            f"{p50['agent']:.1f} / {p90['agent']:.1f} | {overhead:.1f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--drivers", default="bwrap,docker,wasm")
    args = parser.parse_args()
    sim = ServerProcess(python_module("simulator", "--host", "127.0.0.1", "--port", "0")).start()
    lines = ["| driver | raw node p50 / p90 ms | plain chat p50 ms | agent loop p50 / p90 ms | loop overhead ms |",
             "|---|---|---|---|---|"]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for driver in args.drivers.split(","):
                print(f"[{driver}] starting gateway and node", file=sys.stderr, flush=True)
                gateway, node = start_stack(sim, driver, Path(tmp))
                try:
                    samples = asyncio.run(measure(driver, gateway, node, args.runs, Path(tmp) / f"cp-{driver}"))
                    lines.append(row(driver, samples))
                except (openai.OpenAIError, RuntimeError, AssertionError) as exc:
                    lines.append(f"| {driver} | unavailable: {type(exc).__name__}: {str(exc)[:80]} | | | |")
                finally:
                    node.stop()
                    gateway.stop()
    finally:
        sim.stop()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
