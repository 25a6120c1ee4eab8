from __future__ import annotations

import asyncio
from typing import Any, cast

from starlette.types import Receive, Scope, Send

from gateway.reconcile.switch import Generation, Switch
from gateway.wiring import Gateway


class Retiring:
    """Stands in for a gateway: records when its request path is closed."""

    def __init__(self) -> None:
        self.retired = asyncio.Event()

    async def retire(self) -> None:
        self.retired.set()


def generation(number: int, release: asyncio.Event, seen: list[int]) -> tuple[Generation, Retiring]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(number)
        await release.wait()

    owner = Retiring()
    return Generation(number, cast(Gateway, owner), app), owner


async def call(switch: Switch) -> None:
    async def receive() -> Any:
        return {"type": "http.request"}

    async def send(message: Any) -> None:
        return None

    await switch({"type": "http"}, receive, send)


async def test_a_request_finishes_on_its_generation_which_closes_when_it_is_done() -> None:
    switch, release = Switch(), asyncio.Event()
    seen: list[int] = []
    first, first_owner = generation(1, release, seen)
    second, second_owner = generation(2, asyncio.Event(), seen)
    switch.swap(first, drain_timeout_s=60)
    pending = asyncio.create_task(call(switch))
    await asyncio.sleep(0)
    switch.swap(second, drain_timeout_s=60)
    late = asyncio.create_task(call(switch))
    await asyncio.sleep(0.01)
    assert seen == [1, 2]  # the new request went to generation 2
    assert switch.draining() == [{"generation": 1, "in_flight": 1}] and not first_owner.retired.is_set()
    release.set()
    await pending
    await asyncio.wait_for(first_owner.retired.wait(), 5)
    assert switch.draining() == []
    late.cancel()
    await switch.aclose()
    assert second_owner.retired.is_set()


async def test_an_idle_generation_closes_at_once_and_shutdown_closes_the_rest() -> None:
    switch, release = Switch(), asyncio.Event()
    seen: list[int] = []
    first, first_owner = generation(1, release, seen)
    second, second_owner = generation(2, release, seen)
    switch.swap(first, drain_timeout_s=60)
    switch.swap(second, drain_timeout_s=60)
    await asyncio.wait_for(first_owner.retired.wait(), 5)
    await switch.aclose()
    assert second_owner.retired.is_set()
