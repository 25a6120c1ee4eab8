"""The authz stage alone, with a recording policy engine double."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from gateway.kernel.context import Principal, Reply, RequestContext
from gateway.kernel.errors import PermissionDenied
from gateway.kernel.policy import Decision, Obligations
from gateway.services.policy.gate import PolicyGate
from middleware.authz.stage import AuthzStage


class Engine:
    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        self.seen: list[tuple[str, Mapping[str, Any]]] = []

    async def decide(self, action: str, document: Mapping[str, Any]) -> Decision:
        self.seen.append((action, document))
        return self.decision


def chat(body: dict[str, Any] | None = None) -> RequestContext:
    raw = body or {"model": "sim-chat", "messages": [{"role": "user", "content": "hi"}]}
    ctx = RequestContext("r1", "chat", "sim-chat", raw, {})
    ctx.principal = Principal(tenant="acme", key_id="k1", roles=("dev",))
    return ctx


async def answer(ctx: RequestContext) -> Reply:
    return Reply(body=b"{}")


async def test_allow_passes_the_subject_action_and_model_to_the_engine() -> None:
    engine = Engine(Decision(True, decision_id="d1"))
    ctx = chat()
    reply = await AuthzStage(PolicyGate(engine, "eu-west"))(ctx, answer)
    assert reply.body == b"{}"
    action, document = engine.seen[0]
    assert action == "chat"
    assert document["subject"]["tenant"] == "acme" and document["subject"]["roles"] == ["dev"]
    assert document["resource"]["model"] == "sim-chat"
    assert document["context"]["region"] == "eu-west"


async def test_deny_is_a_403_with_reasons_and_never_calls_next() -> None:
    engine = Engine(Decision(False, reasons=("team 'acme' may not use model 'sim-chat'",), decision_id="d2"))

    async def must_not_run(ctx: RequestContext) -> Reply:
        raise AssertionError("denied requests must not reach the router")

    with pytest.raises(PermissionDenied) as caught:
        await AuthzStage(PolicyGate(engine, "local"))(chat(), must_not_run)
    assert caught.value.status == 403
    assert "may not use model" in caught.value.message
    assert caught.value.headers["x-policy-decision-id"] == "d2"


@pytest.mark.parametrize(("asked", "expected"), [(None, 100), (50, 50), (500, 100)])
async def test_max_tokens_obligation_caps_the_body(asked: int | None, expected: int) -> None:
    engine = Engine(Decision(True, obligations=Obligations(max_tokens=100)))
    body: dict[str, Any] = {"model": "sim-chat", "messages": [{"role": "user", "content": "hi"}]}
    if asked is not None:
        body["max_tokens"] = asked
    ctx = chat(body)
    await AuthzStage(PolicyGate(engine, "local"))(ctx, answer)
    assert ctx.body["max_tokens"] == expected


async def test_allowed_regions_become_a_hard_routing_hint() -> None:
    engine = Engine(Decision(True, obligations=Obligations(allowed_regions=("eu-west",))))
    ctx = chat()
    await AuthzStage(PolicyGate(engine, "local"))(ctx, answer)
    assert ctx.hints.allowed_regions == frozenset({"eu-west"})


async def test_auto_is_decided_without_a_model_the_router_asks_per_candidate() -> None:
    engine = Engine(Decision(True))
    ctx = chat()
    ctx.model, ctx.auto = "auto", True
    await AuthzStage(PolicyGate(engine, "local"))(ctx, answer)
    assert engine.seen[0][1]["resource"]["model"] == ""


@pytest.mark.parametrize(("asked", "expected"), [(None, 100), (50, 50), (500, 100)])
async def test_max_tokens_obligation_caps_a_responses_request(asked: int | None, expected: int) -> None:
    engine = Engine(Decision(True, obligations=Obligations(max_tokens=100)))
    body: dict[str, Any] = {"model": "sim-chat", "input": "hi", "tools": [{"type": "function", "name": "f"}]}
    if asked is not None:
        body["max_output_tokens"] = asked
    ctx = RequestContext("r1", "responses", "sim-chat", body, {})
    await AuthzStage(PolicyGate(engine, "local"))(ctx, answer)
    assert ctx.body["max_output_tokens"] == expected and "max_tokens" not in ctx.body
    action, document = engine.seen[0]
    assert action == "chat" and document["resource"]["tools"] == ["f"] and document["resource"]["modality"] == "text"
