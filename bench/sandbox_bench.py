"""Tool-call latency per sandbox driver, cold and warm (p50/p99), and concurrent throughput.

    python bench/sandbox_bench.py [--drivers bwrap,docker,wasm] [--runs 20] [--concurrency 2]

cold: a fresh driver each call (docker: a new container; wasm: module compile from the on-disk
cache skipped, a fresh instance). warm: a started driver (docker: warm pool, measured only when
the pool is full and idle). wasm-tool: the shipped ``echo`` WASI module. Goals (issue 6): docker
warm p50 <= 30 ms, cold <= 400 ms; bwrap <= 20 ms; CPython on wasm <= 60 ms; WASI tool <= 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

from executors.drivers import load_driver
from executors.drivers.base import SandboxDriver
from executors.drivers.docker import DockerDriver
from executors.spec import Job

PY = Job(id="bench", tool="python", runtime="python", code="print(1)")
TOOL = Job(id="bench", tool="echo", runtime="wasm", module="echo", stdin="hello")
GOALS = {"docker": (400.0, 30.0), "bwrap": (None, 20.0), "wasm": (None, 60.0), "wasm-tool": (None, 5.0)}


def progress(label: str, done: int, total: int) -> None:
    bar = "#" * (20 * done // total)
    sys.stderr.write(f"\r{label:<18} [{bar:<20}] {done}/{total}")
    sys.stderr.flush()
    if done == total:
        sys.stderr.write("\n")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await call()
    return (time.perf_counter() - start) * 1000


async def warm_series(driver: SandboxDriver, job: Job, runs: int, label: str) -> list[float]:
    samples = []
    for i in range(runs):
        if isinstance(driver, DockerDriver):
            await driver.ready()
        samples.append(await timed(lambda: driver.run(job)))
        progress(label, i + 1, runs)
    return samples


async def cold_docker(runs: int) -> list[float]:
    samples = []
    async with DockerDriver(pool_size=0) as driver:
        for i in range(runs):
            samples.append(await timed(lambda: driver.run(PY)))
            await driver.ready()
            progress("docker cold", i + 1, runs)
    return samples


async def throughput(driver: SandboxDriver, job: Job, concurrency: int, total: int) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await driver.run(job)

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(total)))
    return total / (time.perf_counter() - start)


async def bench_driver(name: str, runs: int, concurrency: int) -> list[tuple[str, str, list[float], float]]:
    driver = load_driver(name, **({"pool_size": concurrency} if name == "docker" else {}))
    if not driver.available():
        print(f"{name}: unavailable ({driver.unavailable_reason()})")
        return []
    rows = []
    if name == "docker":
        rows.append((name, "cold", await cold_docker(max(3, runs // 4)), 0.0))
    async with driver:
        await warm_series(driver, PY, 2, f"{name} warmup")
        rows.append((name, "warm", await warm_series(driver, PY, runs, f"{name} warm"), 0.0))
        rps = await throughput(driver, PY, concurrency, runs)
        rows[-1] = (*rows[-1][:3], rps)
        if name == "wasm":
            rows.append(
                (
                    "wasm-tool",
                    "warm",
                    await warm_series(driver, TOOL, runs, "wasm tool"),
                    await throughput(driver, TOOL, concurrency, runs * 5),
                )
            )
    return rows


def table(rows: list[tuple[str, str, list[float], float]]) -> str:
    lines = [f"{'driver':<10} {'mode':<5} {'n':>4} {'p50 ms':>8} {'p99 ms':>8} {'goal ms':>8} {'rps':>7}"]
    for name, mode, samples, rps in rows:
        cold_goal, warm_goal = GOALS.get(name, (None, None))
        goal = cold_goal if mode == "cold" else warm_goal
        lines.append(
            f"{name:<10} {mode:<5} {len(samples):>4} {statistics.median(samples):>8.1f} "
            f"{pct(samples, 0.99):>8.1f} {goal if goal else '-':>8} {rps or '-':>7.5}"
        )
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--drivers", default="bwrap,docker,wasm")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    rows = []
    for name in [n.strip() for n in args.drivers.split(",") if n.strip()]:
        rows += await bench_driver(name, args.runs, args.concurrency)
    print(table(rows))


if __name__ == "__main__":
    asyncio.run(main())
