"""The resources one gateway process owns, created at startup and closed at shutdown."""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, TypeVar, cast

from gateway.kernel.chain import Filter, Handler, compose
from gateway.kernel.config import BackendSettings, Settings
from gateway.kernel.context import Reply, RequestContext, StateKey
from gateway.kernel.errors import ServiceOverloaded
from gateway.kernel.observability.logging import JsonLog
from gateway.kernel.observability.metrics import Metrics
from routers.backends.base import Backend
from routers.health import HealthChecker
from routers.registry import ModelRegistry
from routers.router import Router

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from gateway.services.stores.postgres import Postgres
    from gateway.services.stores.resp import RespClient

T = TypeVar("T")
BackendFactory = Callable[[BackendSettings, "Runtime"], Backend]
StageFactory = Callable[["Runtime"], Filter]

# Stage name → "module:factory", imported only when the chain names it.
STAGES: dict[str, str] = {
    "authn": "middleware.authn.stage:build",
    "authz": "middleware.authz.stage:build",
    "limits": "middleware.limits.stage:build",
    "cache": "middleware.cache.stage:build",
    "rag": "middleware.rag.stage:build",
    "tools": "middleware.tools.stage:build",
}

# Capability modules: each may define ``async def start(runtime)`` (create its resources,
# register cleanups on ``runtime.resources``) and ``def routes(runtime) -> list[BaseRoute]``.
FEATURES: tuple[str, ...] = (
    "gateway.features.identity",
    "gateway.features.policy",
    "gateway.features.limits",
    "gateway.features.embeddings",
    "gateway.features.vectorstores",
    "gateway.features.scheduler",
)


def openai_backend(settings: BackendSettings, runtime: Runtime) -> Backend:
    from routers.backends.openai import OpenAIBackend, make_session

    return OpenAIBackend(settings, make_session(settings), runtime.metrics, _api_key(settings))


def anthropic_backend(settings: BackendSettings, runtime: Runtime) -> Backend:
    from routers.backends.anthropic import AnthropicBackend
    from routers.backends.openai import make_session

    return AnthropicBackend(settings, make_session(settings), runtime.metrics, _api_key(settings))


def _api_key(settings: BackendSettings) -> str | None:
    key = settings.api_key.get_secret_value() if settings.api_key else None
    if key is None and settings.api_key_env:
        key = os.environ.get(settings.api_key_env)
    return key


BACKEND_TYPES: dict[str, BackendFactory] = {"openai": openai_backend, "anthropic": anthropic_backend}


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
        self._provided: dict[StateKey[Any], Any] = {}
        self._redis: aioredis.Redis | None = None
        self._redis_made = False
        self._postgres: Postgres | None = None
        self._resp: RespClient | None = None
        self._postgres_lock = asyncio.Lock()

    def provide(self, key: StateKey[T], value: T) -> None:
        """Register a shared service (a policy engine, a key store, ...) for other parts to use."""
        self._provided[key] = value

    def require(self, key: StateKey[T]) -> T:
        if key not in self._provided:
            raise RuntimeError(f"{key.name} is not available: its feature did not start")
        return cast(T, self._provided[key])

    def lookup(self, key: StateKey[T]) -> T | None:
        return cast("T | None", self._provided.get(key))

    def redis(self) -> aioredis.Redis | None:
        """The shared Redis client, or ``None`` in the embedded default."""
        if not self._redis_made:
            from gateway.services.stores.redis import connect_redis

            self._redis = connect_redis(self.settings.redis)
            self._redis_made = True
            if self._redis is not None:
                self.resources.push_async_callback(self._redis.aclose)
        return self._redis

    def resp(self) -> RespClient | None:
        """The lean pipelined Redis client for per-request commands, or ``None`` without Redis."""
        r = self.settings.redis
        if self._resp is None and r.url is not None:
            from gateway.services.stores.resp import RespClient

            self._resp = RespClient(r.url.get_secret_value(), timeout_s=r.socket_timeout_ms / 1000,
                                    connect_timeout_s=r.connect_timeout_ms / 1000)
            self.resources.push_async_callback(self._resp.aclose)
        return self._resp

    async def postgres(self) -> Postgres:
        """The shared PostgreSQL pool, opened on first use (embedded server if no DSN)."""
        async with self._postgres_lock:
            if self._postgres is None:
                from gateway.services.stores.postgres import Postgres

                self._postgres = await Postgres.open(self.settings.postgres)
                self.resources.push_async_callback(self._postgres.aclose)
            return self._postgres

    async def start(self) -> None:
        for b in self.settings.backends:
            factory = self._backend_factory or BACKEND_TYPES[b.type]
            backend = factory(b, self)
            self.backends[b.name] = backend
            self.resources.push_async_callback(backend.aclose)
        routing = self.settings.routing
        gauge = self.metrics.circuit_state.labels
        self.registry = ModelRegistry.from_settings(self.settings, self.backends, gauge)
        await self.resources.enter_async_context(
            HealthChecker(self.registry, routing.health.interval_s, self.metrics)
        )
        for feature in features():
            start = getattr(feature, "start", None)
            if start is not None:
                await start(self)
        stages = [self._stage(name) for name in self.settings.chain]
        self.handler = compose(stages, Router(self.registry, routing, self.metrics))
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


def features() -> list[Any]:
    return [importlib.import_module(name) for name in FEATURES]


async def _not_started(ctx: RequestContext) -> Reply:
    raise ServiceOverloaded("The gateway is starting up.")
