"""Test helpers: services built from settings (nothing opened), contexts with a chosen principal, a counting
backend."""

from __future__ import annotations

import io
from contextlib import AsyncExitStack
from typing import Any

import orjson

from gateway.kernel.config import Settings
from gateway.kernel.context import Principal, Reply, RequestContext, Route
from gateway.kernel.observability.logging import JsonLog
from gateway.kernel.observability.metrics import Metrics
from gateway.services.bundle import Services
from gateway.wiring import build_services


async def services(**settings: Any) -> Services:
    """The real services for ``settings``; embedder and PostgreSQL open only when used (never, here)."""
    return await build_services(Settings.model_validate(settings), JsonLog(io.BytesIO()), Metrics(),
                                AsyncExitStack())


def context(body: dict[str, Any], tenant: str | None = None, *, route: Route = "chat",
            headers: dict[str, str] | None = None) -> RequestContext:
    principal = Principal(tenant=tenant, key_id=f"key-{tenant}") if tenant else None
    return RequestContext("req-1", route, str(body.get("model", "m")), dict(body), headers or {},
                          bool(body.get("stream")), principal=principal)


def chat(content: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": content}], "temperature": 0, **extra}


class Backend:
    """The terminal handler: counts calls and answers with a complete chat completion."""

    def __init__(self) -> None:
        self.calls = 0
        self.bodies: list[dict[str, Any]] = []

    async def __call__(self, ctx: RequestContext) -> Reply:
        self.calls += 1
        self.bodies.append(dict(ctx.body))
        answer = {"id": f"c{self.calls}", "object": "chat.completion", "created": 1, "model": "m",
                  "choices": [{"index": 0, "message": {"role": "assistant", "content": f"answer {self.calls}"},
                               "finish_reason": "stop", "logprobs": None}]}
        return Reply(body=orjson.dumps(answer))


async def finish(ctx: RequestContext) -> None:
    """What the endpoint does after sending: run the finalizers (stores happen there)."""
    for finalizer in ctx.finalizers:
        await finalizer(ctx)
