"""The durable background queue with real PostgreSQL: competing runners, cancellation, failures,
a runner killed mid-item, shutdown, fencing. Its own database (``queue_dsn``)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gateway.services.responses import ResponseState
from gateway.services.responses.queue import RESTARTED
from gateway.services.responses.runner import BackgroundRunner, Emit, Work
from gateway.services.stores.postgres import Postgres
from tests.gateway.services.responses.conftest import SETTINGS
from tests.support.openapi import validate
from tests.support.processes import ServerProcess, python_module
from tests.support.response_objects import Query, response_object, user_message

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        await asyncio.sleep(0.05)


async def queued(state: ResponseState, tenant: str, n: int = 1) -> list[str]:
    ids = []
    for _ in range(n):
        response = response_object(status="queued", background=True, output=None)
        await state.queue.submit(tenant, response, [user_message("work")])
        ids.append(response["id"])
    return ids


async def status(state: ResponseState, tenant: str, response_id: str) -> str:
    stored = await state.responses.get(tenant, response_id)
    return str(stored.response["status"]) if stored else "absent"


def finishing(record: list[str], deltas: int = 2) -> Work:
    """A run that streams ``deltas`` text deltas and completes."""
    async def work(tenant: str, response_id: str, emit: Emit) -> dict[str, Any]:
        record.append(response_id)
        await emit({"type": "response.in_progress"})
        for i in range(deltas):
            await emit({"type": "response.output_text.delta", "delta": f"d{i}"})
            await asyncio.sleep(0.01)
        return response_object(response_id, output="done", background=True)

    return work


def runner(state: ResponseState, work: Work, owner: str) -> BackgroundRunner:
    """A runner with a lease long enough that a loaded machine does not lose it mid-run."""
    settings = SETTINGS.background.model_copy(update={"lease_s": 10.0})
    r = BackgroundRunner(state.queue, work, settings, owner=owner)
    r.start()
    return r


async def test_two_competing_runners_run_each_response_once(queue_state: ResponseState, tenant: str,
                                                             queue_sql: Query) -> None:
    ids = await queued(queue_state, tenant, 24)
    record: list[str] = []
    runners = [runner(queue_state, finishing(record), "a"), runner(queue_state, finishing(record), "b")]

    async def all_done() -> bool:
        rows = await queue_sql("SELECT count(*) FROM llmops_response_jobs WHERE tenant = %s AND state = 'done'",
                               tenant)
        return rows == [(len(ids),)]

    await eventually(all_done, "every job done")
    for r in runners:
        await r.aclose()
    assert sorted(record) == sorted(ids)
    for response_id in ids:
        stored = await queue_state.responses.get(tenant, response_id)
        assert stored is not None and stored.response["status"] == "completed"
        validate(stored.response, "Response")
        found = await queue_state.queue.events_after(tenant, response_id, -1)
        assert found is not None and found[0] == "completed"
        events = found[1]
        assert [e["sequence_number"] for e in events] == [0, 1, 2, 3]
        assert [e["type"] for e in events][-1] == "response.completed"
        assert events[-1]["response"]["output"][0]["content"][0]["text"] == "done"
    assert await queue_sql("SELECT DISTINCT attempts FROM llmops_response_jobs WHERE tenant = %s", tenant) == [(1,)]


async def test_cancel_stops_a_running_response(queue_state: ResponseState, tenant: str, queue_sql: Query) -> None:
    [response_id] = await queued(queue_state, tenant)
    started, stopped = asyncio.Event(), asyncio.Event()

    async def endless(tenant: str, response_id: str, emit: Emit) -> dict[str, Any]:
        await emit({"type": "response.in_progress"})
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()
        raise AssertionError("unreachable")

    r = runner(queue_state, endless, "c")
    await asyncio.wait_for(started.wait(), 30)
    assert await status(queue_state, tenant, response_id) == "in_progress"
    cancelled = await queue_state.responses.cancel(tenant, response_id)
    assert cancelled is not None and cancelled[1] == "cancelled"
    await asyncio.wait_for(stopped.wait(), 30)
    await r.aclose()
    assert await status(queue_state, tenant, response_id) == "cancelled"
    assert await queue_sql("SELECT state FROM llmops_response_jobs WHERE tenant = %s", tenant) == [("cancelled",)]


async def test_a_run_that_raises_fails_its_response_without_its_details(queue_state: ResponseState,
                                                                         tenant: str) -> None:
    [response_id] = await queued(queue_state, tenant)

    async def broken(tenant: str, response_id: str, emit: Emit) -> dict[str, Any]:
        await emit({"type": "response.in_progress"})
        raise RuntimeError("password=hunter2")

    r = runner(queue_state, broken, "d")

    async def failed() -> bool:
        return await status(queue_state, tenant, response_id) == "failed"

    await eventually(failed, "the response failed")
    await r.aclose()
    stored = await queue_state.responses.get(tenant, response_id)
    assert stored is not None and stored.response["error"] == {
        "code": "server_error", "message": "The background run failed (RuntimeError)."}
    validate(stored.response, "Response")
    found = await queue_state.queue.events_after(tenant, response_id, -1)
    assert found is not None and [e["type"] for e in found[1]] == ["response.in_progress", "response.failed"]
    assert [e["sequence_number"] for e in found[1]] == [0, 1]
    assert "hunter2" not in str(found)


async def test_a_runner_killed_mid_item_is_recovered(queue_state: ResponseState, queue_dsn: str, tenant: str,
                                                     queue_sql: Query) -> None:
    [response_id] = await queued(queue_state, tenant)
    doomed = ServerProcess(python_module("tests.gateway.services.responses.crash_runner", queue_dsn)).start()
    try:
        await eventually(lambda: _said(doomed, f"running {response_id}"), "the item is running")
    finally:
        doomed.signal(signal.SIGKILL)
        doomed.stop()
    assert await status(queue_state, tenant, response_id) == "in_progress"

    async def requeued() -> bool:
        await queue_state.recover()
        rows = await queue_sql("SELECT state FROM llmops_response_jobs WHERE tenant = %s", tenant)
        return rows == [("queued",)]

    await eventually(requeued, "the expired lease is recovered")
    assert await status(queue_state, tenant, response_id) == "queued"
    record: list[str] = []
    r = runner(queue_state, finishing(record), "e")

    async def completed() -> bool:
        return await status(queue_state, tenant, response_id) == "completed"

    await eventually(completed, "the second run completes")
    await r.aclose()
    assert record == [response_id]
    assert await queue_sql("SELECT state, attempts FROM llmops_response_jobs WHERE tenant = %s", tenant) == [
        ("done", 2)]
    found = await queue_state.queue.events_after(tenant, response_id, -1)
    assert found is not None
    assert [e["sequence_number"] for e in found[1]] == list(range(len(found[1])))
    assert [e["type"] for e in found[1]][:2] == ["response.in_progress", "response.in_progress"]


async def _said(process: ServerProcess, line: str) -> bool:
    return any(line in out for out in process.output)


async def test_a_response_whose_runners_keep_dying_is_failed_with_a_reason(queue_state: ResponseState,
                                                                           tenant: str) -> None:
    [response_id] = await queued(queue_state, tenant)
    for attempt in (1, 2):  # max_attempts: 2
        [job] = [j for j in await queue_state.queue.claim(f"ghost{attempt}", 100, 1) if j.tenant == tenant]
        assert job.attempt == attempt
        await asyncio.sleep(1.2)  # the lease (1 s) expires: no ghost renews it
        await queue_state.recover()
    stored = await queue_state.responses.get(tenant, response_id)
    assert stored is not None and stored.response["status"] == "failed"
    assert stored.response["error"] == {"code": "server_error", "message": RESTARTED}
    validate(stored.response, "Response")
    found = await queue_state.queue.events_after(tenant, response_id, -1)
    assert found is not None and found[1][-1]["type"] == "response.failed"
    assert found[1][-1]["response"]["error"]["message"] == RESTARTED


async def test_shutdown_gives_the_running_job_back(queue_state: ResponseState, tenant: str,
                                                   queue_sql: Query) -> None:
    [response_id] = await queued(queue_state, tenant)
    started = asyncio.Event()

    async def endless(tenant: str, response_id: str, emit: Emit) -> dict[str, Any]:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    r = runner(queue_state, endless, "f")
    await asyncio.wait_for(started.wait(), 30)
    await r.aclose()
    assert await queue_sql("SELECT state, attempts, owner FROM llmops_response_jobs WHERE tenant = %s", tenant) == [
        ("queued", 0, None)]
    assert await status(queue_state, tenant, response_id) == "queued"
    record: list[str] = []
    r = runner(queue_state, finishing(record), "g")

    async def completed() -> bool:
        return await status(queue_state, tenant, response_id) == "completed"

    await eventually(completed, "another runner completes it")
    await r.aclose()


async def test_submit_stores_and_queues_in_one_step(queue_state: ResponseState, tenant: str,
                                                     queue_sql: Query) -> None:
    [response_id] = await queued(queue_state, tenant)
    stored = await queue_state.responses.get(tenant, response_id)
    assert stored is not None and stored.response["status"] == "queued"
    assert [i["content"][0]["text"] for i in stored.input_items] == ["work"]
    assert await queue_sql("SELECT state, attempts FROM llmops_response_jobs WHERE tenant = %s", tenant) == [
        ("queued", 0)]
    assert not await queue_state.queue.enqueue(tenant, response_id)  # already queued
    assert not await queue_state.queue.enqueue(tenant, "resp_not_stored")
    await queue_state.responses.delete(tenant, response_id)  # its job goes with it
    assert await queue_sql("SELECT count(*) FROM llmops_response_jobs WHERE tenant = %s", tenant) == [(0,)]


async def test_a_runner_that_lost_its_lease_can_write_nothing(queue_state: ResponseState, tenant: str) -> None:
    [response_id] = await queued(queue_state, tenant)
    [job] = [j for j in await queue_state.queue.claim("slow", 100, 1) if j.tenant == tenant]
    await asyncio.sleep(1.2)
    await queue_state.recover()
    [again] = [j for j in await queue_state.queue.claim("fast", 100, 30) if j.tenant == tenant]
    assert not await queue_state.queue.renew("slow", job, 30)
    assert not await queue_state.queue.append_events("slow", job, 0, [{"type": "response.in_progress"}])
    assert not await queue_state.queue.finish("slow", job, response_object(response_id, background=True))
    assert await status(queue_state, tenant, response_id) == "in_progress"
    assert await queue_state.queue.finish("fast", again, response_object(response_id, background=True))
    assert await status(queue_state, tenant, response_id) == "completed"


async def test_served_work_runs_from_the_first_use_of_the_state(queue_postgres: Postgres, tenant: str) -> None:
    """As the gateway does without a configured server: no runner until something opens the state."""
    opened: list[int] = []

    async def open_postgres() -> Postgres:
        opened.append(1)
        return queue_postgres

    state, record = ResponseState(open_postgres, SETTINGS), list[str]()
    state.serve_background(finishing(record))
    assert not opened
    response = response_object(status="queued", background=True, output=None)
    await state.queue.submit(tenant, response, [user_message("work")], request={"body": {"input": "work"}})
    assert await state.queue.request(tenant, response["id"]) == {"body": {"input": "work"}}
    await eventually(lambda: _is(state, tenant, response["id"], "completed"), "the served work ran")
    assert record == [response["id"]] and opened == [1]
    await state.aclose()


async def test_open_soon_retries_until_the_database_answers(queue_postgres: Postgres, queue_state: ResponseState,
                                                            tenant: str) -> None:
    """As the gateway does with a configured server: opened at start, retried while it does not answer."""
    attempts: list[int] = []

    async def open_postgres() -> Postgres:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("connection refused")  # the state maps it to StateUnavailable
        return queue_postgres

    state, record = ResponseState(open_postgres, SETTINGS), list[str]()
    [response_id] = await queued(queue_state, tenant)
    state.serve_background(finishing(record))
    state.open_soon()
    await eventually(lambda: _is(queue_state, tenant, response_id, "completed"), "opened and ran after a retry")
    assert len(attempts) == 2 and record == [response_id]
    await state.aclose()


async def _is(state: ResponseState, tenant: str, response_id: str, wanted: str) -> bool:
    return await status(state, tenant, response_id) == wanted
