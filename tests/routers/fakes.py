"""In-process test doubles for router tests: scripted backends and a settings builder."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from gateway.kernel.config import Settings, settings_from_mapping
from gateway.kernel.context import Reply, RequestContext
from gateway.kernel.errors import UpstreamError
from routers.registry import ModelRegistry
from routers.router import Router


class FakeBackend:
    """Answers ``{"backend": name}``; ``fail`` makes every call raise, ``error`` picks the error."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0
        self.fail = False
        self.error: UpstreamError | None = None
        self.stream_chunks: list[bytes] | None = None

    async def send(self, ctx: RequestContext, upstream_model: str) -> Reply:
        self.calls += 1
        if self.fail:
            raise self.error or UpstreamError(f"{self.name} failed")
        if self.stream_chunks is not None:
            return Reply(stream=_chunks(self.stream_chunks), media_type="text/event-stream")
        return Reply(body=b'{"backend":"' + self.name.encode() + b'"}')

    async def ready(self) -> bool:
        return not self.fail

    async def aclose(self) -> None:
        return None


async def _chunks(chunks: list[bytes]) -> AsyncGenerator[bytes, None]:
    for chunk in chunks:
        yield chunk


def settings(backends: list[dict[str, Any]], models: list[dict[str, Any]], **routing: Any) -> Settings:
    full = [{"base_url": "http://127.0.0.1:1/v1", **b} for b in backends]
    return settings_from_mapping({"backends": full, "models": models, "routing": routing})


def router_for(s: Settings, **kwargs: Any) -> tuple[Router, dict[str, FakeBackend]]:
    fakes = {b.name: FakeBackend(b.name) for b in s.backends}
    registry = ModelRegistry.from_settings(s, dict(fakes))

    async def no_sleep(seconds: float) -> None:
        return None

    return Router(registry, s.routing, sleep=no_sleep, **kwargs), fakes


def chat(model: str, content: Any = "hi", **extra: Any) -> RequestContext:
    body = {"model": model, "messages": [{"role": "user", "content": content}], **extra}
    return RequestContext("req", "chat", model, body, {})
