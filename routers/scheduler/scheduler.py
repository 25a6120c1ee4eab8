"""``Scheduler``: lease a node slot for a job (waiting fairly if none is free), run it, retry safely.

A lease is counted in this replica's ``inflight`` table and released when the job ends. A node
that fails mid-job is avoided for ``failure_cooldown_s``; an idempotent job is re-run elsewhere
(at most ``retries`` times), any other job fails with ``NodeFailed``. Every wait has a deadline.

Only trusted nodes (enrolled and not revoked in the ``book``) are offered jobs. A job that carries secrets
goes only to nodes with the labels each secret requires (``secret_labels``). While a job runs, its
node is watched: a node that misses its heartbeat (``NodeInfo.fresh``) or is revoked fails the
attempt at once, so an idempotent job is re-placed instead of waiting for its network deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from executors.errors import AuthError, JobRejected, NodeError
from executors.inner import Answerer
from executors.spec import Job, Result
from gateway.kernel.config.sections.tools import SchedulerSettings
from routers.scheduler.enrollment import NodeBook
from routers.scheduler.errors import JobRefused, JobTimeout, NodeFailed, NoEligibleNode, QueueTimeout
from routers.scheduler.nodes import NodeInfo
from routers.scheduler.placement import Placement, rank
from routers.scheduler.queue import FairQueue, Waiter
from routers.scheduler.registry import NodeRegistry

_REFRESH_S = 0.5  # how often a waiter re-reads the registry (nodes may appear via another replica)
_WATCH_S = 0.25  # how often a running job checks that its node is still alive and trusted


class NodeRunner(Protocol):
    async def run(self, node: NodeInfo, job: Job, answer: Answerer | None = None) -> Result: ...


@dataclass(frozen=True, slots=True)
class Dispatch:
    result: Result
    node: NodeInfo
    attempts: int
    queued_ms: float


class Scheduler:
    def __init__(
        self,
        registry: NodeRegistry,
        runner: NodeRunner,
        settings: SchedulerSettings,
        *,
        clock: Callable[[], float] = time.time,
        book: NodeBook | None = None,
        secret_labels: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.registry = registry
        self._runner = runner
        self._s = settings
        self._clock = clock
        self.book = book  # None: every registered node is trusted (tests, fakes)
        self._secret_labels = dict(secret_labels or {})
        self._alive: set[str] = set()
        self._refreshed = 0.0
        self._inflight: dict[str, int] = {}
        self._cooling: dict[str, float] = {}
        self._queue = FairQueue(settings.queue_per_tenant, settings.queue_total)
        self._nodes: list[NodeInfo] = []

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def inflight(self, node_id: str) -> int:
        return self._inflight.get(node_id, 0)

    async def refresh(self) -> list[NodeInfo]:
        """Re-read live nodes (minus those cooling down after a failure) and serve waiters."""
        now = self._clock()
        self._cooling = {k: t for k, t in self._cooling.items() if t > now}
        alive = [n for n in await self.registry.live(now) if self.book is None or self.book.trusted(n.id)]
        self._alive, self._refreshed = {n.id for n in alive}, time.monotonic()
        self._nodes = [n for n in alive if n.id not in self._cooling]
        self._pump()
        return self._nodes

    async def choose(self, p: Placement) -> NodeInfo:
        """The best eligible node regardless of free slots (to pin a workspace group)."""
        ranked = rank(await self.refresh(), p, self._inflight)
        if not ranked:
            raise self._no_node(p)
        return ranked[0]

    async def acquire(self, p: Placement, deadline: float) -> tuple[NodeInfo, float]:
        """Lease a slot on the best node for ``p``; returns it and the ms spent queueing."""
        started = time.monotonic()
        nodes = await self.refresh()
        if not rank(nodes, p, self._inflight):
            raise self._no_node(p)
        node = self._free_node(p) if not len(self._queue) else None
        if node is not None:
            self._take(node)
            return node, 0.0
        waiter = Waiter(p)
        self._queue.push(waiter)
        self._pump()
        node = await self._wait(waiter, deadline)
        return node, (time.monotonic() - started) * 1000

    def release(self, node_id: str) -> None:
        left = self._inflight.get(node_id, 0) - 1
        if left > 0:
            self._inflight[node_id] = left
        else:
            self._inflight.pop(node_id, None)
        self._pump()

    async def run(self, job: Job, p: Placement, *, idempotent: bool, deadline: float,
                  answer: Answerer | None = None) -> Dispatch:
        """Place and run ``job`` before ``deadline`` (monotonic); retry idempotent jobs after node failures.

        ``answer``: for a code job, decides and runs its script's inner tool calls (``executors/inner.py``)."""
        p = self.for_secrets(job, p)
        exclude = set(p.exclude)
        queued = 0.0
        failure: NodeFailed | None = None
        for attempt in range(1, self._s.retries + 2):
            try:
                node, waited = await self.acquire(replace(p, exclude=frozenset(exclude)), deadline)
            except NoEligibleNode:
                if failure is None:
                    raise
                raise failure from None  # nowhere else to retry: the node failure is the clear error
            queued += waited
            try:
                result = await self._run_on(node, job, deadline, answer)
                return Dispatch(result, node, attempt, queued)
            except NodeFailed as exc:
                exclude.add(node.id)
                failure = exc
                if not idempotent or p.pin is not None or attempt > self._s.retries:
                    raise
            finally:
                self.release(node.id)
        raise AssertionError("unreachable")  # pragma: no cover

    def for_secrets(self, job: Job, p: Placement) -> Placement:
        """``p`` plus the node labels every secret in ``job`` requires (``tools.secret_node_labels``)."""
        needed = dict(p.labels)
        for name in sorted(job.grants.secrets):
            for key, value in self._secret_labels.get(name, {}).items():
                if needed.setdefault(key, value) != value:
                    raise NoEligibleNode(f"Secret {name!r} needs node label {key}={value}, "
                                         f"which conflicts with {key}={needed[key]}.")
        return replace(p, labels=needed) if needed != p.labels else p

    async def _run_on(self, node: NodeInfo, job: Job, deadline: float, answer: Answerer | None) -> Result:
        budget = min(deadline - time.monotonic(), job.limits.wall_seconds + self._s.job_grace_s)
        try:
            async with asyncio.timeout(max(budget, 0.001)):
                return await self._while_alive(node, self._runner.run(node, job, answer))
        except TimeoutError:
            raise JobTimeout(f"Tool job {job.id} got no answer from node {node.id} in {budget:.1f} s.") from None
        except (JobRejected, AuthError) as exc:
            raise JobRefused(f"Node {node.id} refused tool job {job.id}: {exc}", code=_code(exc)) from None
        except NodeError as exc:
            self._cooling[node.id] = self._clock() + self._s.failure_cooldown_s
            raise NodeFailed(f"Node {node.id} failed while running tool job {job.id}: {exc}") from None

    async def _while_alive(self, node: NodeInfo, work: Awaitable[Result]) -> Result:
        """The result of ``work``, unless ``node`` stops heartbeating or is revoked first (``NodeError``)."""
        task = asyncio.ensure_future(work)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=_WATCH_S)
                if done:
                    return task.result()
                if time.monotonic() - self._refreshed >= _WATCH_S:
                    await self.refresh()
                if node.id not in self._alive:
                    raise NodeError(f"node {node.id} stopped answering (heartbeat overdue) or was revoked")
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _wait(self, waiter: Waiter, deadline: float) -> NodeInfo:
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise QueueTimeout(f"No node slot for {waiter.placement.describe()} before the deadline.")
                try:
                    return await asyncio.wait_for(asyncio.shield(waiter.future), min(remaining, _REFRESH_S))
                except TimeoutError:
                    await self.refresh()
        except BaseException:
            self._queue.remove(waiter)
            if waiter.future.done() and not waiter.future.cancelled():
                self.release(waiter.future.result().id)  # won a slot while being cancelled
            else:
                waiter.future.cancel()
            raise

    def _pump(self) -> None:
        for waiter in self._queue.in_order():
            if waiter.future.done():
                self._queue.remove(waiter)
                continue
            node = self._free_node(waiter.placement)
            if node is not None:
                self._take(node)
                self._queue.served(waiter)
                waiter.future.set_result(node)

    def _free_node(self, p: Placement) -> NodeInfo | None:
        for node in rank(self._nodes, p, self._inflight):
            if self._inflight.get(node.id, 0) < node.slots:
                return node
        return None

    def _take(self, node: NodeInfo) -> None:
        self._inflight[node.id] = self._inflight.get(node.id, 0) + 1

    def _no_node(self, p: Placement) -> NoEligibleNode:
        known = len(self._nodes)
        return NoEligibleNode(f"No live tool node satisfies {p.describe()} ({known} live node(s)).")


def _code(exc: Exception) -> str:
    return "tool_job_rejected" if isinstance(exc, JobRejected) else "tool_node_auth"

