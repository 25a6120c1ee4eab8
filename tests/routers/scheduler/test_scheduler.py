"""Leases, fair queueing, back-pressure, batch class, co-scheduling pins, failures and deadlines."""

from __future__ import annotations

import asyncio
import time

import pytest

from routers.scheduler import (
    JobRefused,
    JobTimeout,
    NodeFailed,
    NoEligibleNode,
    Placement,
    QueueFull,
    QueueTimeout,
)
from tests.routers.scheduler.fakes import job, node, scheduler


def soon(seconds: float = 5.0) -> float:
    return time.monotonic() + seconds


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_runs_on_the_best_node_and_releases_the_slot() -> None:
    s, runner = scheduler(node("a", slots=1), node("b", slots=1, datasets=("docs",)))
    runner.auto = True
    done = await s.run(job("j1"), Placement("python", dataset="docs"), idempotent=True, deadline=soon())
    assert done.node.id == "b" and done.attempts == 1 and done.result.stdout == "ran j1 on b"
    assert s.inflight("b") == 0


async def test_no_eligible_node_is_an_immediate_clear_error() -> None:
    s, _ = scheduler(node("a", region="eu"))
    with pytest.raises(NoEligibleNode, match="regions=us"):
        await s.run(job("j"), Placement("python", regions=("us",)), idempotent=True, deadline=soon())


async def test_waiters_are_served_round_robin_across_tenants() -> None:
    s, runner = scheduler(node("a", slots=1))
    first = asyncio.create_task(s.run(job("busy"), Placement("python", tenant="x"), idempotent=True, deadline=soon()))
    await settle()
    order = [("x", "x1"), ("x", "x2"), ("x", "x3"), ("y", "y1")]
    tasks = []
    for tenant, jid in order:
        tasks.append(asyncio.create_task(
            s.run(job(jid), Placement("python", tenant=tenant), idempotent=True, deadline=soon())))
        await settle()
    assert s.waiting == 4
    for jid in ("busy", "x1", "y1", "x2", "x3"):
        await settle()
        runner.finish(jid)
    await asyncio.gather(first, *tasks)
    assert [j for _, j in runner.started] == ["busy", "x1", "y1", "x2", "x3"]


async def test_batch_waits_behind_interactive() -> None:
    s, runner = scheduler(node("a", slots=1))
    busy = asyncio.create_task(s.run(job("busy"), Placement("python"), idempotent=True, deadline=soon()))
    await settle()
    batch = asyncio.create_task(s.run(job("batch"), Placement("python", batch=True), idempotent=True, deadline=soon()))
    await settle()
    live = asyncio.create_task(s.run(job("live"), Placement("python"), idempotent=True, deadline=soon()))
    await settle()
    for jid in ("busy", "live", "batch"):
        runner.finish(jid)
        await settle()
    await asyncio.gather(busy, batch, live)
    assert [j for _, j in runner.started] == ["busy", "live", "batch"]


async def test_full_queue_is_429_back_pressure() -> None:
    s, runner = scheduler(node("a", slots=1), queue_per_tenant=1, queue_total=10)
    busy = asyncio.create_task(s.run(job("busy"), Placement("python", tenant="t"), idempotent=True, deadline=soon()))
    await settle()
    waiting = asyncio.create_task(s.run(job("w"), Placement("python", tenant="t"), idempotent=True, deadline=soon()))
    await settle()
    with pytest.raises(QueueFull) as info:
        await s.run(job("over"), Placement("python", tenant="t"), idempotent=True, deadline=soon())
    assert info.value.status == 429 and info.value.headers["retry-after"] == "1"
    other = asyncio.create_task(s.run(job("o"), Placement("python", tenant="u"), idempotent=True, deadline=soon()))
    for jid in ("busy", "w", "o"):
        runner.finish(jid)
    await asyncio.gather(busy, waiting, other)


async def test_waiting_past_the_deadline_is_a_timeout_and_leaves_the_queue() -> None:
    s, runner = scheduler(node("a", slots=1))
    busy = asyncio.create_task(s.run(job("busy"), Placement("python"), idempotent=True, deadline=soon()))
    await settle()
    with pytest.raises(QueueTimeout):
        await s.run(job("late"), Placement("python"), idempotent=True, deadline=soon(0.2))
    assert s.waiting == 0
    runner.finish("busy")
    await busy
    assert s.inflight("a") == 0


async def test_a_node_that_never_answers_hits_the_job_deadline() -> None:
    s, runner = scheduler(node("a"), job_grace_s=0)
    runner.hang_on.add("a")
    with pytest.raises(JobTimeout):
        await s.run(job("j"), Placement("python"), idempotent=True, deadline=soon(0.2))
    assert s.inflight("a") == 0


async def test_idempotent_job_is_retried_on_another_node_after_a_crash() -> None:
    s, runner = scheduler(node("a", slots=2), node("b", slots=1))
    runner.auto = True
    runner.fail_on.add("a")
    done = await s.run(job("j"), Placement("python"), idempotent=True, deadline=soon())
    assert done.node.id == "b" and done.attempts == 2
    assert [n for n, _ in runner.started] == ["a", "b"]
    again = await s.run(job("k"), Placement("python"), idempotent=True, deadline=soon())
    assert again.node.id == "b"  # the failed node cools down


async def test_non_idempotent_job_fails_clearly_after_a_crash() -> None:
    s, runner = scheduler(node("a", slots=2), node("b"))
    runner.fail_on.add("a")
    with pytest.raises(NodeFailed, match="Node a failed while running tool job j"):
        await s.run(job("j"), Placement("python"), idempotent=False, deadline=soon())
    assert [n for n, _ in runner.started] == ["a"]


async def test_crash_with_nowhere_to_retry_reports_the_node_failure() -> None:
    s, runner = scheduler(node("a"))
    runner.fail_on.add("a")
    with pytest.raises(NodeFailed) as info:
        await s.run(job("j"), Placement("python"), idempotent=True, deadline=soon())
    assert info.value.status == 502 and info.value.code == "tool_node_failed"


async def test_a_refused_job_is_not_retried() -> None:
    s, runner = scheduler(node("a"), node("b"))
    runner.reject_on.update({"a", "b"})
    with pytest.raises(JobRefused):
        await s.run(job("j"), Placement("python"), idempotent=True, deadline=soon())
    assert len(runner.started) == 1


async def test_pinned_jobs_share_a_node_even_when_others_are_idle() -> None:
    s, runner = scheduler(node("a", slots=1), node("b", slots=1))
    runner.auto = True
    target = await s.choose(Placement("python"))
    pinned = Placement("python", pin=target.id)
    results = await asyncio.gather(*(s.run(job(f"j{i}"), pinned, idempotent=True, deadline=soon()) for i in range(3)))
    assert {r.node.id for r in results} == {target.id}


async def test_cancelled_waiter_frees_its_place() -> None:
    s, runner = scheduler(node("a", slots=1))
    busy = asyncio.create_task(s.run(job("busy"), Placement("python"), idempotent=True, deadline=soon()))
    await settle()
    waiter = asyncio.create_task(s.run(job("w"), Placement("python"), idempotent=True, deadline=soon()))
    await settle()
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert s.waiting == 0
    runner.finish("busy")
    await busy
    assert s.inflight("a") == 0
