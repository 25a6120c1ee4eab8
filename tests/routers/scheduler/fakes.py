"""Fake nodes for scheduler tests: a ``NodeRunner`` whose jobs finish when the test says so."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from executors.errors import JobRejected, NodeError
from executors.inner import Answerer, InnerCall
from executors.spec import Job, Result
from gateway.kernel.config.sections.tools import SchedulerSettings
from routers.scheduler import MemoryNodeRegistry, NodeInfo, Scheduler


def node(node_id: str, *, slots: int = 1, region: str = "eu", datasets: tuple[str, ...] = (),
         drivers: tuple[str, ...] = ("bwrap",), runtimes: tuple[str, ...] = ("python", "shell"),
         free: int | None = None, **labels: str) -> NodeInfo:
    return NodeInfo(node_id, f"http://{node_id}", {"region": region, **labels}, drivers, runtimes, datasets,
                    slots, slots if free is None else free, 0.0, static=True)


class FakeRunner:
    """Jobs block until ``finish(job_id)``; ``fail_on`` nodes raise ``NodeError`` (a crash mid-job)."""

    def __init__(self) -> None:
        self.started: list[tuple[str, str]] = []  # (node id, job id)
        self.gates: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.fail_on: set[str] = set()
        self.reject_on: set[str] = set()
        self.hang_on: set[str] = set()
        self.auto = False
        self.inner: list[tuple[str, dict[str, object]]] = []  # what a code job's "script" calls, in order
        self.answers: list[dict[str, Any]] = []  # what those calls were answered

    async def run(self, node: NodeInfo, job: Job, answer: Answerer | None = None) -> Result:
        self.started.append((node.id, job.id))
        if job.runtime == "code" and answer is not None:
            for n, (name, arguments) in enumerate(self.inner, 1):
                self.answers.append((await answer(InnerCall(str(n), name, arguments))).to_dict())
        if node.id in self.fail_on:
            raise NodeError(f"{node.id} crashed")
        if node.id in self.reject_on:
            raise JobRejected("no driver")
        if node.id in self.hang_on:
            await asyncio.sleep(3600)
        if not self.auto:
            await self.gates[job.id].wait()
        return Result(0, f"ran {job.id} on {node.id}", "", "bwrap", 1.0)

    def finish(self, job_id: str) -> None:
        self.gates[job_id].set()


def scheduler(*nodes: NodeInfo, runner: FakeRunner | None = None, **settings: object) -> tuple[Scheduler, FakeRunner]:
    fake = runner or FakeRunner()
    registry = MemoryNodeRegistry(15.0, nodes)
    return Scheduler(registry, fake, SchedulerSettings.model_validate(settings)), fake


def job(job_id: str, runtime: str = "python") -> Job:
    return Job(id=job_id, tool=runtime, runtime=runtime, code="print(1)")  # type: ignore[arg-type]
