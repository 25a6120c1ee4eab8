"""The resources one gateway process owns, created at startup and closed at shutdown."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

from gateway.chain import Filter, Handler, compose
from gateway.config import BackendSettings, Settings
from gateway.context import Reply, RequestContext
from gateway.errors import ServiceOverloaded
from gateway.observability.logging import JsonLog
from gateway.observability.metrics import Metrics
from routers.backends.base import Backend
from routers.registry import ModelRegistry
from routers.router import Router

BackendFactory = Callable[[BackendSettings, "Runtime"], Backend]
StageFactory = Callable[["Runtime"], Filter]

# Stage name → "module:factory", imported only when the chain names it.
STAGES: dict[str, str] = {}


def openai_backend(settings: BackendSettings, runtime: Runtime) -> Backend:
    from routers.backends.openai import OpenAIBackend, make_session

    key = settings.api_key.get_secret_value() if settings.api_key else None
    if key is None and settings.api_key_env:
        key = os.environ.get(settings.api_key_env)
    return OpenAIBackend(settings, make_session(settings), runtime.metrics, key)


BACKEND_TYPES: dict[str, BackendFactory] = {"openai": openai_backend}


class Runtime:
    """Composition root for the request path: backends → registry → router → chain."""

    def __init__(
        self,
        settings: Settings,
        log: JsonLog,
        metrics: Metrics,
        *,
        backend_factory: BackendFactory | None = None,
    ) -> None:
        self.settings = settings
        self.log = log
        self.metrics = metrics
        self.backends: dict[str, Backend] = {}
        self.registry = ModelRegistry({}, {})
        self.resources = AsyncExitStack()
        self.handler: Handler = _not_started
        self._backend_factory = backend_factory

    async def start(self) -> None:
        for b in self.settings.backends:
            factory = self._backend_factory or BACKEND_TYPES[b.type]
            backend = factory(b, self)
            self.backends[b.name] = backend
            self.resources.push_async_callback(backend.aclose)
        self.registry = ModelRegistry.from_settings(self.settings, self.backends)
        stages = [self._stage(name) for name in self.settings.chain]
        self.handler = compose(stages, Router(self.registry))
        self.log.info("gateway_started", backends=len(self.backends), models=len(self.settings.models),
                      chain=list(self.settings.chain))

    def _stage(self, name: str) -> Filter:
        target = STAGES.get(name)
        if target is None:
            raise RuntimeError(f"chain: stage {name!r} is not available in this build")
        module, _, attr = target.partition(":")
        factory: Any = getattr(importlib.import_module(module), attr)
        stage: Filter = factory(self)
        return stage

    async def aclose(self) -> None:
        await self.resources.aclose()
        self.log.flush()


async def _not_started(ctx: RequestContext) -> Reply:
    raise ServiceOverloaded("The gateway is starting up.")
