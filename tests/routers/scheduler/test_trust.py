"""Which nodes a job may reach: enrolled and unrevoked only, the labels its secrets require, and a node that
stops answering is given up within its heartbeat interval so an idempotent job is re-placed in time."""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from executors.signing import public_text
from executors.spec import Grants, Job
from gateway.kernel.config.sections.tools import SchedulerSettings
from routers.scheduler import MemoryNodeRegistry, NodeInfo, NoEligibleNode, Placement, Scheduler
from routers.scheduler.enrollment import NodeBook
from tests.routers.scheduler.fakes import FakeRunner, job

CERT = "cd" * 32


def live(node_id: str, interval_s: float = 0.0, **labels: str) -> NodeInfo:
    return NodeInfo(node_id, f"https://{node_id}", labels, ("bwrap",), ("python",), (), 2, 2, time.time(),
                    interval_s=interval_s)


def enrolled_book(*node_ids: str, labels: dict[str, dict[str, str]] | None = None) -> NodeBook:
    book = NodeBook(Ed25519PrivateKey.generate())
    for node_id in node_ids:
        token, _ = book.issue((labels or {}).get(node_id, {}), node_id)
        book.enroll(token, node_id, public_text(Ed25519PrivateKey.generate()), CERT)
    return book


def with_secret(job_id: str, *names: str) -> Job:
    return Job(id=job_id, tool="python", runtime="python", code="print(1)",
               grants=Grants(secrets={n: f"value-of-{n}" for n in names}))


async def setup(*nodes: NodeInfo, book: NodeBook | None = None,
                secret_labels: dict[str, dict[str, str]] | None = None) -> tuple[Scheduler, FakeRunner]:
    registry = MemoryNodeRegistry(15.0)
    for n in nodes:
        await registry.upsert(n)
    runner = FakeRunner()
    runner.auto = True
    return Scheduler(registry, runner, SchedulerSettings(), book=book, secret_labels=secret_labels), runner


async def test_only_enrolled_unrevoked_nodes_are_offered_jobs() -> None:
    book = enrolled_book("a")
    s, runner = await setup(live("a"), live("stranger"), book=book)
    assert [n.id for n in await s.refresh()] == ["a"]
    book.revoke("a")
    with pytest.raises(NoEligibleNode):
        await s.run(job("j"), Placement("python"), idempotent=True, deadline=time.monotonic() + 5)
    assert runner.started == []


async def test_a_secret_goes_only_to_nodes_with_its_labels() -> None:
    book = enrolled_book("a-plain", "b-secure", labels={"b-secure": {"tier": "secure"}})
    s, runner = await setup(live("a-plain"), live("b-secure", tier="secure"), book=book,
                            secret_labels={"API_KEY": {"tier": "secure"}})
    deadline = time.monotonic() + 5
    for i in range(3):
        done = await s.run(with_secret(f"s{i}", "API_KEY"), Placement("python"), idempotent=True, deadline=deadline)
        assert done.node.id == "b-secure"
    plain = await s.run(with_secret("p", "OTHER"), Placement("python"), idempotent=True, deadline=deadline)
    assert plain.node.id == "a-plain"  # a secret with no label rule, and the least loaded node first
    book.revoke("b-secure")
    with pytest.raises(NoEligibleNode, match="tier=secure"):
        await s.run(with_secret("x", "API_KEY"), Placement("python"), idempotent=True, deadline=deadline)
    assert [n for n, j in runner.started if j.startswith("s") or j == "x"] == ["b-secure"] * 3


async def test_conflicting_secret_labels_place_nowhere() -> None:
    s, _ = await setup(live("a", region="eu"), secret_labels={"EU": {"region": "eu"}, "US": {"region": "us"}})
    with pytest.raises(NoEligibleNode, match="conflicts"):
        await s.run(with_secret("j", "EU", "US"), Placement("python"), idempotent=True, deadline=time.monotonic() + 5)


async def keep_beating(s: Scheduler, node: NodeInfo) -> None:
    while True:
        await s.registry.upsert(replace(node, last_seen=time.time()))
        await asyncio.sleep(0.05)


async def test_a_frozen_node_is_given_up_within_its_interval_and_the_job_re_placed() -> None:
    s, runner = await setup(live("a-frozen", 0.2), live("b-good", 0.2))
    runner.hang_on.add("a-frozen")  # accepts the job and never answers; its heartbeats stopped too
    beats = asyncio.create_task(keep_beating(s, live("b-good", 0.2)))
    try:
        started = time.monotonic()
        done = await s.run(job("j"), Placement("python"), idempotent=True, deadline=started + 10)
        elapsed = time.monotonic() - started
    finally:
        beats.cancel()
        with suppress(asyncio.CancelledError):
            await beats
    assert done.node.id == "b-good" and done.attempts == 2
    assert elapsed < 2.0  # about 1.5 heartbeat intervals (0.3 s) plus one watch period: not the 10 s deadline
    assert s.inflight("a-frozen") == 0


async def test_revoking_a_node_mid_job_re_places_the_job() -> None:
    book = enrolled_book("a", "b")
    s, runner = await setup(live("a"), live("b"), book=book)
    runner.hang_on.add("a")
    task = asyncio.create_task(s.run(job("j"), Placement("python"), idempotent=True, deadline=time.monotonic() + 10))
    await asyncio.sleep(0.1)
    book.revoke("a")
    done = await asyncio.wait_for(task, 2)
    assert done.node.id == "b" and [n for n, _ in runner.started] == ["a", "b"]
