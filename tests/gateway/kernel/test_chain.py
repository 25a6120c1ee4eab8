from __future__ import annotations

from gateway.kernel.chain import Handler, compose
from gateway.kernel.context import Reply, RequestContext


class Tag:
    def __init__(self, name: str, seen: list[str]) -> None:
        self.name = name
        self._seen = seen

    async def __call__(self, ctx: RequestContext, call_next: Handler) -> Reply:
        self._seen.append(f">{self.name}")
        reply = await call_next(ctx)
        self._seen.append(f"<{self.name}")
        reply.headers[self.name] = "1"
        return reply


class ShortCircuit:
    name = "deny"

    async def __call__(self, ctx: RequestContext, call_next: Handler) -> Reply:
        return Reply(status=403)


def ctx() -> RequestContext:
    return RequestContext("r1", "chat", "m", {}, {})


async def test_filters_run_in_order_around_the_terminal() -> None:
    seen: list[str] = []

    async def terminal(c: RequestContext) -> Reply:
        seen.append("router")
        return Reply(body=b"{}")

    reply = await compose([Tag("a", seen), Tag("b", seen)], terminal)(ctx())
    assert seen == [">a", ">b", "router", "<b", "<a"]
    assert reply.headers == {"b": "1", "a": "1"}


async def test_a_filter_can_answer_without_the_router() -> None:
    async def terminal(c: RequestContext) -> Reply:
        raise AssertionError("the router must not run")

    assert (await compose([ShortCircuit()], terminal)(ctx())).status == 403


async def test_empty_chain_is_the_terminal() -> None:
    async def terminal(c: RequestContext) -> Reply:
        return Reply(status=201)

    assert (await compose([], terminal)(ctx())).status == 201
