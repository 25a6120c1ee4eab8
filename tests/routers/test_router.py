"""The router in-process, over scripted backends: balancing, needs, fallbacks, retries, breaker, auto."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.kernel.errors import (
    ModelNotFound,
    ServiceOverloaded,
    UnsupportedCapability,
    UpstreamError,
    UpstreamUnavailable,
)
from routers.state import CLOSED, OPEN
from tests.routers.fakes import chat, router_for, settings

B2 = [{"name": "a"}, {"name": "b"}]


async def test_group_is_balanced_and_reply_says_why() -> None:
    router, fakes = router_for(settings(B2, [{"name": "m", "deployments": [{"backend": "a"}, {"backend": "b"}]}]))
    for _ in range(200):
        ctx = chat("m")
        await router(ctx)
        assert ctx.response_headers["x-llmops-backend"] in ("a", "b")
        assert ctx.response_headers["x-llmops-route-reason"].startswith("model=m")
    assert fakes["a"].calls > 30 and fakes["b"].calls > 30


async def test_unknown_model_is_404() -> None:
    router, _ = router_for(settings(B2, [{"name": "m", "deployments": [{"backend": "a"}]}]))
    with pytest.raises(ModelNotFound):
        await router(chat("nope"))


async def test_never_sends_to_a_deployment_lacking_a_capability() -> None:
    models = [{"name": "m", "deployments": [{"backend": "a", "capabilities": []}, {"backend": "b"}],
               "capabilities": ["tools", "json_mode"]}]
    router, fakes = router_for(settings(B2, models))
    tools = [{"type": "function", "function": {"name": "f"}}]
    for _ in range(50):
        await router(chat("m", tools=tools))
        await router(chat("m", response_format={"type": "json_object"}))
    assert fakes["a"].calls == 0 and fakes["b"].calls == 100


@pytest.mark.parametrize(
    ("content", "extra", "missing"),
    [
        ([{"type": "image_url", "image_url": {"url": "http://x/y.png"}}], {}, "vision"),
        ([{"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}], {}, "audio_input"),
        ("hi", {"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    ],
)
async def test_400_when_no_deployment_fits(content: object, extra: dict[str, object], missing: str) -> None:
    models = [{"name": "m", "deployments": [{"backend": "a"}], "modalities": ["text"], "capabilities": []}]
    router, _ = router_for(settings(B2, models))
    with pytest.raises(UnsupportedCapability) as caught:
        await router(chat("m", content, **extra))
    assert caught.value.status == 400 and missing in caught.value.message


async def test_context_window_is_respected() -> None:
    models = [{"name": "m", "deployments": [{"backend": "a", "context_window": 100}, {"backend": "b"}]}]
    router, fakes = router_for(settings(B2, models))
    for _ in range(20):
        await router(chat("m", "x" * 1000))
    assert fakes["a"].calls == 0
    small = [{"name": "m", "context_window": 10, "deployments": [{"backend": "a"}]}]
    router, _ = router_for(settings(B2, small))
    with pytest.raises(UnsupportedCapability, match="context window"):
        await router(chat("m", "x" * 1000))


async def test_failover_within_group_then_fallback_group() -> None:
    backends = [{"name": "a"}, {"name": "b"}, {"name": "c"}]
    models = [{"name": "m", "deployments": [{"backend": "a"}, {"backend": "b"}]},
              {"name": "spare", "deployments": [{"backend": "c"}]}]
    router, fakes = router_for(settings(backends, models, fallbacks={"m": ["spare"]}, max_attempts=3))
    fakes["a"].fail = fakes["b"].fail = True
    ctx = chat("m")
    await router(ctx)
    assert ctx.response_headers["x-llmops-backend"] == "c"
    assert "fallback" in ctx.response_headers["x-llmops-route-reason"]
    assert "attempt=3" in ctx.response_headers["x-llmops-route-reason"]


async def test_retry_budget_caps_retries() -> None:
    models = [{"name": "m", "deployments": [{"backend": "a"}, {"backend": "b"}]}]
    s = settings(B2, models, retry_budget={"ratio": 0.0, "min_per_s": 0.0}, circuit={"failures": 1000})
    router, fakes = router_for(s)
    fakes["a"].fail = True
    failures = 0
    for _ in range(50):
        try:
            await router(chat("m"))
        except UpstreamError:
            failures += 1
    assert failures == fakes["a"].calls > 0  # no retries at all: every failure reached the client


async def test_circuit_opens_then_half_open_probe_closes_it() -> None:
    models = [{"name": "m", "deployments": [{"backend": "a"}, {"backend": "b"}]}]
    s = settings(B2, models, circuit={"failures": 3, "open_s": 0.05}, balancer="least_outstanding")
    router, fakes = router_for(s)
    fakes["a"].fail = True
    for _ in range(30):
        await router(chat("m"))  # retried onto b: the client never sees a's failures
    deployment_a = next(d for d in router._registry.deployments() if d.backend.name == "a")
    assert deployment_a.state.circuit == OPEN and fakes["a"].calls == 3
    fakes["a"].fail = False
    import asyncio

    await asyncio.sleep(0.06)
    for _ in range(30):
        await router(chat("m"))
    assert deployment_a.state.circuit == CLOSED and fakes["a"].calls > 4


async def test_retry_after_cools_a_deployment_down() -> None:
    models = [{"name": "m", "deployments": [{"backend": "a"}, {"backend": "b"}]}]
    router, fakes = router_for(settings(B2, models))
    fakes["a"].fail = True
    fakes["a"].error = UpstreamUnavailable("busy", headers={"retry-after": "30"})
    while fakes["a"].calls == 0:
        await router(chat("m"))
    fakes["a"].fail = False
    for _ in range(50):
        await router(chat("m"))
    assert fakes["a"].calls == 1


async def test_concurrency_cap_sends_elsewhere_or_503() -> None:
    models = [{"name": "m", "deployments": [{"backend": "a", "max_concurrency": 1}]}]
    router, fakes = router_for(settings(B2, models))
    fakes["a"].stream_chunks = [b"data: 1\n\n"]
    reply = await router(chat("m", stream=True))
    with pytest.raises(ServiceOverloaded):
        await router(chat("m"))
    assert reply.stream is not None
    assert [c async for c in reply.stream] == [b"data: 1\n\n"]
    await router(chat("m"))  # the stream ended: the slot is free again


async def test_auto_routes_code_simple_and_embeddings() -> None:
    backends = [{"name": n} for n in ("big", "coder", "small", "embed")]
    models: list[dict[str, Any]] = [
        {"name": "big", "deployments": [{"backend": "big"}], "modalities": ["text", "vision"],
         "cost": {"input_per_mtok": 5}},
        {"name": "coder", "deployments": [{"backend": "coder"}], "modalities": ["text"], "tags": ["code"],
         "cost": {"input_per_mtok": 2}},
        {"name": "small", "deployments": [{"backend": "small"}], "modalities": ["text"], "tags": ["small"],
         "cost": {"input_per_mtok": 0.1}},
        {"name": "embed", "deployments": [{"backend": "embed"}], "modalities": ["embeddings"]},
    ]
    router, _ = router_for(settings(backends, models, classifier={"simple_max_tokens": 50}))

    async def where(ctx: object) -> str:
        from gateway.kernel.context import RequestContext

        assert isinstance(ctx, RequestContext)
        await router(ctx)
        return ctx.response_headers["x-llmops-backend"]

    assert await where(chat("auto", "Write a python function that reverses a list")) == "coder"
    assert await where(chat("auto", "Say hello")) == "small"
    assert await where(chat("auto", "Tell me a long story about the sea " * 20)) == "coder"  # cheapest general
    vision = [{"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": "http://x"}}]
    assert await where(chat("auto", vision)) == "big"
    from gateway.kernel.context import RequestContext

    embed = RequestContext("r", "embeddings", "auto", {"model": "auto", "input": "hi"}, {})
    assert await where(embed) == "embed"

    from gateway.kernel.context import Principal
    from gateway.kernel.errors import PermissionDenied

    def as_key(ctx: RequestContext, *models: str) -> RequestContext:
        ctx.principal = Principal(tenant="t", key_id="k", models=models)
        return ctx

    # auto only picks among the models the caller's key may use
    assert await where(as_key(chat("auto", "Write a python function that reverses a list"), "big", "small")) == "big"
    assert await where(as_key(chat("auto", "Say hello"), "big")) == "big"
    with pytest.raises(PermissionDenied):
        await router(as_key(chat("auto", "Say hello"), "gpt-*"))


def legacy_completion(model: str) -> Any:
    from gateway.kernel.context import RequestContext

    return RequestContext("req", "completions", model, {"model": model, "prompt": "Once"}, {})


async def test_legacy_completions_skip_backends_without_that_protocol() -> None:
    backends = [{"name": "claude", "type": "anthropic"}, {"name": "vllm"}]
    models = [{"name": "m", "deployments": [{"backend": "claude"}, {"backend": "vllm"}]},
              {"name": "only-claude", "deployments": [{"backend": "claude"}]}]
    router, fakes = router_for(settings(backends, models))
    for _ in range(20):
        await router(legacy_completion("m"))
        await router(chat("m"))
    assert fakes["claude"].calls > 0  # chat is balanced over both
    assert fakes["vllm"].calls >= 20  # every completion went to the OpenAI-compatible one
    with pytest.raises(UnsupportedCapability, match="legacy_completions"):
        await router(legacy_completion("only-claude"))
