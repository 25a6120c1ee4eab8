"""Every routing attempt is authorized on the canonical model it would call (the router's gate)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import pytest

from gateway.kernel.context import Principal
from gateway.kernel.errors import PermissionDenied, UpstreamError
from gateway.kernel.policy import Decision
from gateway.services.policy.gate import PolicyGate
from tests.routers.fakes import chat, router_for, settings

BACKENDS = [{"name": "a"}, {"name": "b"}, {"name": "c"}]


class Forbids:
    """A policy engine double that denies the listed models and records every question."""

    def __init__(self, *models: str) -> None:
        self.models = set(models)
        self.asked: list[str] = []

    async def decide(self, action: str, document: Mapping[str, Any]) -> Decision:
        model = document["resource"]["model"]
        self.asked.append(model)
        return Decision(model not in self.models, ("forbidden model",) if model in self.models else ())


def fallbacks() -> Any:
    models = [{"name": n, "deployments": [{"backend": n}]} for n in ("a", "b", "c")]
    return settings(BACKENDS, models, fallbacks={"a": ["b", "c"]})


async def test_a_denied_fallback_is_skipped_and_named() -> None:
    engine = Forbids("b")
    router, fakes = router_for(fallbacks(), gate=PolicyGate(engine))
    fakes["a"].fail = True
    ctx = chat("a")
    reply = await router(ctx)
    assert orjson.loads(reply.body) == {"backend": "c"} and fakes["b"].calls == 0
    assert "denied=b" in ctx.response_headers["x-llmops-route-reason"]
    assert ctx.served_model == "c"
    assert engine.asked == ["b", "c"]  # the request's own model was decided by the chain


async def test_no_allowed_fallback_means_the_upstream_error_not_a_forbidden_answer() -> None:
    router, fakes = router_for(fallbacks(), gate=PolicyGate(Forbids("b", "c")))
    fakes["a"].fail = True
    with pytest.raises(UpstreamError) as caught:
        await router(chat("a"))
    assert fakes["b"].calls == fakes["c"].calls == 0
    assert caught.value.headers["x-llmops-route-reason"] == "denied=b,c"


async def test_fallbacks_respect_the_keys_grants_without_a_policy() -> None:
    router, fakes = router_for(fallbacks())
    fakes["a"].fail = True
    ctx = chat("a")
    ctx.principal = Principal(tenant="t", key_id="k", models=("a", "c"))
    assert orjson.loads((await router(ctx)).body) == {"backend": "c"} and fakes["b"].calls == 0


async def test_auto_chooses_only_among_allowed_models() -> None:
    models = [{"name": "cheap", "deployments": [{"backend": "a"}], "cost": {"input_per_mtok": 0.1}},
              {"name": "dear", "deployments": [{"backend": "b"}], "cost": {"input_per_mtok": 9.0}}]
    router, fakes = router_for(settings(BACKENDS[:2], models, auto_model="auto"), gate=PolicyGate(Forbids("cheap")))
    for _ in range(5):
        ctx = chat("auto")
        ctx.auto = True
        assert orjson.loads((await router(ctx)).body) == {"backend": "b"}
    assert fakes["a"].calls == 0
    everything_denied, _ = router_for(settings(BACKENDS[:2], models, auto_model="auto"),
                                      gate=PolicyGate(Forbids("cheap", "dear")))
    ctx = chat("auto")
    ctx.auto = True
    with pytest.raises(PermissionDenied):
        await everything_denied(ctx)


async def test_the_extension_is_removed_before_the_backend_sees_the_body() -> None:
    router, _ = router_for(settings(BACKENDS[:1], [{"name": "a", "deployments": [{"backend": "a"}]}]))
    ctx = chat("a", llmops={"max_steps": 1})
    await router(ctx)
    assert "llmops" not in ctx.body
