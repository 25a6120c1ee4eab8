"""Batch priority (``gateway/services/batches/gate.py``): fewer batch lines while interactive requests run."""

from __future__ import annotations

import asyncio

import pytest

from gateway.services.batches.gate import PriorityGate


async def _peak(gate: PriorityGate, lines: int) -> int:
    peak = 0

    async def line() -> None:
        nonlocal peak
        async with gate.slot():
            peak = max(peak, gate.running)
            await asyncio.sleep(0.001)

    await asyncio.gather(*(line() for _ in range(lines)))
    return peak


async def test_idle_runs_concurrency_busy_runs_busy_concurrency() -> None:
    serving = [0]
    gate = PriorityGate(6, 2, lambda: serving[0])
    assert await _peak(gate, 40) == 6
    serving[0] = 3
    assert await _peak(gate, 40) == 2
    assert gate.running == 0


async def test_waiting_lines_speed_up_once_the_replica_is_idle() -> None:
    serving = [1]
    gate = PriorityGate(4, 1, lambda: serving[0])
    held = asyncio.Event()

    async def line() -> None:
        async with gate.slot():
            await held.wait()

    tasks = [asyncio.create_task(line()) for _ in range(4)]
    await asyncio.sleep(0.05)
    assert gate.running == 1
    serving[0] = 0
    await asyncio.sleep(0.05)
    assert gate.running == 4
    held.set()
    await asyncio.gather(*tasks)
    assert gate.running == 0


async def test_a_cancelled_waiter_gives_its_slot_back() -> None:
    gate = PriorityGate(1, 1, lambda: 0)
    release = asyncio.Event()

    async def hold() -> None:
        async with gate.slot():
            await release.wait()

    first = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(hold())
    await asyncio.sleep(0.01)
    waiter.cancel()
    release.set()
    await first
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert gate.running == 0
    assert await _peak(gate, 3) == 1
