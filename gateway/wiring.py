"""The composition root's wiring: settings in, one typed ``Services`` set and one ``Gateway`` out.

Built once at startup, in this order, and only what the configuration uses::

    redis, resp → postgres (opened on first use) → authenticator → ledger, limiter (limits)
      → policy engine (authz or tools) → gates → embedder → vector stores → scheduler (nodes)
      → response state (Responses, Conversations, background queue: opened on first use)
      → upstream MCP servers (middleware/tools/mcp: config + admin API; their sessions opened on first use)
      → backends (routers.backends.BACKEND_TYPES) → model registry → health checks
      → stages (middleware.stages.STAGES, in chain order) → router (terminal)
      → background responses (gateway/http/responses_api/worker.py; run on the response state)

Everything that holds a socket, a process or a task is closed by ``Gateway.aclose`` in reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.embedded import config_dir
from gateway.http.batch_lines import BatchLines
from gateway.http.responses_api.files import InputFiles
from gateway.http.responses_api.state import ResponseState as History
from gateway.http.responses_api.worker import BackgroundWorker
from gateway.kernel.chain import ChainNeeds, Handler, compose
from gateway.kernel.config import BackendSettings, ConfigError, Settings
from gateway.kernel.config.sections.policy import PolicySettings
from gateway.kernel.context import Reply, RequestContext
from gateway.kernel.errors import ServiceOverloaded
from gateway.kernel.observability.logging import JsonLog
from gateway.kernel.observability.metrics import Metrics
from gateway.kernel.policy import PolicyLoadError
from gateway.services.batches.runner import BatchRunner
from gateway.services.batches.service import BatchService
from gateway.services.bundle import Services
from gateway.services.embeddings.factory import make_embedder
from gateway.services.identity.authenticator import Authenticator
from gateway.services.identity.memory import MemoryKeyStore
from gateway.services.identity.secrets import KeyHasher
from gateway.services.identity.types import KeyStore
from gateway.services.jobs.engine import JobEngine
from gateway.services.limits.fallback import FallbackLimiter
from gateway.services.limits.ledger import SpendLedger
from gateway.services.limits.limiter import Limiter, LocalLimiter
from gateway.services.mcp.stores import mcp_stores
from gateway.services.policy.gate import PolicyGate
from gateway.services.policy.service import Evaluator, PolicyService
from gateway.services.responses.state import ResponseState
from gateway.services.vectorstores.service import VectorStoreService
from middleware.stages import build_stage, needs_of
from middleware.tools.mcp.shared import forget as forget_mcp
from middleware.tools.mcp.shared import install as install_mcp
from middleware.tools.mcp.store import ServerStore
from routers.backends import make_backend
from routers.backends.base import Backend
from routers.health import HealthChecker
from routers.registry import ModelRegistry
from routers.router import Router
from routers.scheduler.enrollment import NodeBook
from routers.scheduler.nodes import node_from_static
from routers.scheduler.redis_registry import RedisNodeRegistry
from routers.scheduler.registry import MemoryNodeRegistry, NodeRegistry
from routers.scheduler.runner import NodeClients
from routers.scheduler.scheduler import Scheduler

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from gateway.http.admin_state import StateControl
    from gateway.services.stores.postgres import Postgres
    from gateway.services.stores.resp import RespClient

BackendFactory = Callable[[BackendSettings, Metrics], Backend]


class LazyPostgres:
    """The shared PostgreSQL pool, opened on first use (the embedded server when no DSN is set)."""

    def __init__(self, gateway_settings: Settings, resources: AsyncExitStack) -> None:
        self._settings = gateway_settings.postgres
        self._resources = resources
        self._pool: Postgres | None = None
        self._lock = asyncio.Lock()
        self._users: list[Callable[[], Awaitable[None]]] = []

    def close_before(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Run ``closer`` before the pool closes (a service whose tasks still write on shutdown)."""
        self._users.append(closer)

    async def __call__(self) -> Postgres:
        async with self._lock:
            if self._pool is None:
                from gateway.services.stores.postgres import Postgres

                self._pool = await Postgres.open(self._settings)
                self._resources.push_async_callback(self._close)
            return self._pool

    async def _close(self) -> None:
        for closer in reversed(self._users):
            await closer()
        if self._pool is not None:
            await self._pool.aclose()


async def build_services(settings: Settings, log: JsonLog, metrics: Metrics, resources: AsyncExitStack,
                         postgres: LazyPostgres | None = None) -> Services:
    needs = needs_of(settings.chain)
    redis_client = _redis(settings, resources)
    resp = _resp(settings, resources)
    postgres = postgres or LazyPostgres(settings, resources)
    authenticator = Authenticator(settings.auth, await _key_store(settings, postgres),
                                  KeyHasher(settings.auth.pepper.get_secret_value().encode()
                                            if settings.auth.pepper else None))
    ledger, limiter = await _limits(settings, log, redis_client, resp, resources) if needs.limits else (None, None)
    gate, tool_gate = _gates(settings, needs, log, resources, ledger)
    embedder = make_embedder(settings.rag.embeddings)
    resources.push_async_callback(embedder.aclose)
    def ingest_failed(store_id: str, file_id: str, reason: str) -> None:
        log.error("ingest_failed", store_id=store_id, file_id=file_id, error=reason)
        metrics.ingest_failures.inc()

    vector_stores = VectorStoreService(postgres, embedder, settings.rag, on_failure=ingest_failed)
    resources.push_async_callback(vector_stores.aclose)
    scheduler = await _scheduler(settings, log, redis_client, resources)
    responses = ResponseState(postgres, settings.responses, log)
    postgres.close_before(responses.aclose)
    mcp_credentials, mcp_guard = mcp_stores(settings.mcp, postgres, log, resources)  # opened on first use
    services = Services(settings, needs, log, metrics, redis_client, resp, authenticator, ledger, limiter, gate,
                        tool_gate, embedder, vector_stores, scheduler, responses, mcp_credentials, mcp_guard,
                        _batches(settings, postgres, vector_stores, log))
    _mcp_servers(services, postgres, resources)
    return services


def respawn_services(running: Services, settings: Settings, postgres: LazyPostgres,
                     resources: AsyncExitStack) -> Services:
    """The services of a configuration applied live: what its live sections feed (static keys, the policy,
    MCP servers) is built anew, owned by ``resources``; every other service (stores, limits, the scheduler, and any
    service added later) is the running one, carried over unchanged."""
    auth = running.authenticator
    authenticator = Authenticator(settings.auth, auth.store, auth.hasher)
    gate, tool_gate = _gates(settings, running.needs, running.log, resources, running.ledger)
    services = replace(running, settings=settings, authenticator=authenticator, gate=gate, tool_gate=tool_gate)
    _mcp_servers(services, postgres, resources)
    return services


def _gates(settings: Settings, needs: ChainNeeds, log: JsonLog, resources: AsyncExitStack,
           ledger: SpendLedger | None) -> tuple[PolicyGate, PolicyGate]:
    """The request gate and the tool gate, over one policy engine (none when the chain asks no policy)."""
    asks = needs.request_policy or needs.tool_policy
    engine = _policy(settings.policy, log, resources) if asks else None
    spend_of = ledger.spend_of if ledger is not None else None
    region = settings.policy.region
    return PolicyGate(engine if needs.request_policy else None, region, spend_of), PolicyGate(engine, region, spend_of)


def _batches(settings: Settings, postgres: LazyPostgres, files: VectorStoreService, log: JsonLog) -> BatchService:
    """The Batch API on the job engine; the engine stops before the pool closes (and, from ``Gateway.start``,
    before the backends its jobs use)."""
    jobs = JobEngine(postgres, settings.jobs, log)
    postgres.close_before(jobs.aclose)
    return BatchService(postgres, files, jobs, settings.batches)


def _mcp_servers(services: Services, postgres: LazyPostgres, resources: AsyncExitStack) -> None:
    """The upstream MCP servers (config and admin API, runtime ones in PostgreSQL), one registry per process."""
    registry = install_mcp(services, ServerStore(postgres))
    resources.push_async_callback(registry.aclose)
    resources.callback(forget_mcp, services)


def _redis(settings: Settings, resources: AsyncExitStack) -> aioredis.Redis | None:
    from gateway.services.stores.redis import connect_redis

    client = connect_redis(settings.redis)
    if client is not None:
        resources.push_async_callback(client.aclose)
    return client


def _resp(settings: Settings, resources: AsyncExitStack) -> RespClient | None:
    r = settings.redis
    if r.url is None:
        return None
    from gateway.services.stores.resp import RespClient

    client = RespClient(r.url.get_secret_value(), timeout_s=r.socket_timeout_ms / 1000,
                        connect_timeout_s=r.connect_timeout_ms / 1000)
    resources.push_async_callback(client.aclose)
    return client


async def _key_store(settings: Settings, postgres: LazyPostgres) -> KeyStore:
    if settings.auth.store != "postgres":
        return MemoryKeyStore()
    import psycopg
    import psycopg_pool

    from gateway.services.identity.postgres import PostgresKeyStore

    try:
        store = PostgresKeyStore((await postgres()).pool)
        await store.migrate()
    except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
        # a connection error can quote the DSN: name the key, not the value
        raise ConfigError(f"postgres.dsn: PostgreSQL did not answer for auth.store: postgres "
                          f"({type(exc).__name__})") from None
    return store


async def _limits(settings: Settings, log: JsonLog, client: aioredis.Redis | None, resp: RespClient | None,
                  resources: AsyncExitStack) -> tuple[SpendLedger, Limiter]:
    s = settings.limits
    shared = client if s.backend != "local" else None
    ledger = SpendLedger(shared, s.prices, s.tenant_budgets_usd, log)
    limiter: Limiter = LocalLimiter()
    if shared is None and s.backend == "redis":
        raise ConfigError("limits.backend: redis needs redis.url")
    if shared is not None and resp is not None:
        from gateway.services.limits.redis_limiter import RedisLimiter

        limiter = FallbackLimiter(RedisLimiter(resp), LocalLimiter(), s.on_redis_error, s.redis_retry_s, log)
        task = asyncio.create_task(ledger.run(s.flush_interval_s))

        async def stop() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await ledger.flush()

        resources.push_async_callback(stop)
    return ledger, limiter


def resolve_paths(paths: tuple[str, ...]) -> tuple[str, ...]:
    """Relative policy paths are taken from the working directory, else from the project root."""
    root = config_dir().parent
    return tuple(p if Path(p).is_absolute() or Path(p).exists() else str(root / p) for p in paths)


def make_evaluator(settings: PolicySettings) -> Evaluator:
    if settings.engine == "opa":
        from gateway.services.policy.opa import OpaEvaluator

        if not settings.opa_url:
            raise PolicyLoadError("policy.opa_url is required with engine: opa")
        return OpaEvaluator(settings.opa_url, settings.decision, settings.opa_timeout_ms)
    from gateway.services.policy.rego import RegoEvaluator

    return RegoEvaluator(resolve_paths(settings.paths), settings.decision, settings.modules, settings.data)


def _policy(settings: PolicySettings, log: JsonLog, resources: AsyncExitStack) -> PolicyService:
    evaluator = make_evaluator(settings)
    resources.push_async_callback(evaluator.aclose)
    service = PolicyService(evaluator, settings, log)
    if settings.engine == "rego" and settings.reload_interval_s > 0:
        task = asyncio.create_task(watch_policy(service, settings.reload_interval_s, log))
        resources.callback(task.cancel)
    return service


async def watch_policy(service: PolicyService, interval_s: float, log: JsonLog) -> None:
    """Poll the policy files; a broken edit is logged and the previous policy stays in force."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            if service.reload():
                log.info("policy_reloaded")
        except PolicyLoadError as exc:
            log.error("policy_reload_failed", error=str(exc))
        except OSError as exc:
            log.error("policy_reload_failed", error=f"{type(exc).__name__}: {exc}")



def node_plane(settings: Settings) -> bool:
    """Whether nodes may enroll and heartbeat (``tools.node_secret`` is a deprecated alias that trusts nothing)."""
    tools = settings.tools
    return tools.enrollment.enabled or bool(tools.node_secret and tools.node_secret.get_secret_value())


async def _scheduler(settings: Settings, log: JsonLog, client: aioredis.Redis | None,
                     resources: AsyncExitStack) -> Scheduler | None:
    tools = settings.tools
    if not node_plane(settings) and not tools.nodes:
        return None  # no data plane configured: server-side tools cannot run
    if tools.node_secret is not None:
        log.warning("tools_node_secret_deprecated", detail="nodes enroll with join tokens; the secret trusts nothing")
    static = [node_from_static(n) for n in tools.nodes]
    ttl = tools.scheduler.node_ttl_s
    registry: NodeRegistry = (
        RedisNodeRegistry(client, ttl, static) if client is not None else MemoryNodeRegistry(ttl, static)
    )
    book = NodeBook.open(tools.enrollment.state_dir)
    runner = NodeClients(book)
    resources.push_async_callback(runner.aclose)
    log.info("tool_scheduler_started", static_nodes=len(static), shared=client is not None,
             enrolled=len(book.nodes()))
    return Scheduler(registry, runner, tools.scheduler, book=book, secret_labels=tools.secret_node_labels)


class Gateway:
    """One gateway process's request path, built by ``start`` and closed by ``aclose``.

    ``resources`` holds the services; ``composition`` what one configuration's request path owns (backends,
    health checks, route resources). ``successor`` builds the request path of a new configuration over the
    same services (applied live, ``gateway/reconcile``); ``retire`` closes a replaced one's own parts."""

    def __init__(self, settings: Settings, log: JsonLog, metrics: Metrics,
                 backend_factory: BackendFactory | None = None) -> None:
        self.settings = settings
        self.log = log
        self.metrics = metrics
        self.backend_factory = backend_factory
        self.resources = AsyncExitStack()
        self.composition = AsyncExitStack()
        self.backends: dict[str, Backend] = {}
        self.registry = ModelRegistry({}, {})
        self.handler: Handler = _not_started
        self.services: Services | None = None
        self.startup_error: str | None = None  # set when ``start`` failed for a known reason
        self.health: HealthChecker | None = None
        self.control: StateControl | None = None  # the reconcile loop, once started (``gateway/reconcile``)
        self._postgres: LazyPostgres | None = None

    async def start(self) -> None:
        self._postgres = LazyPostgres(self.settings, self.resources)
        self.services = services = await build_services(self.settings, self.log, self.metrics, self.resources,
                                                        self._postgres)
        await self.compose(services)
        self._serve_background(services)
        self._serve_batches(services)

    async def compose(self, services: Services) -> None:
        """Backends, models, health checks, the chain and the router of ``self.settings``."""
        s = self.settings
        for b in s.backends:
            backend = (self.backend_factory or make_backend)(b, self.metrics)
            self.backends[b.name] = backend
            self.composition.push_async_callback(backend.aclose)
        self.registry = ModelRegistry.from_settings(s, self.backends, self.metrics.circuit_state.labels)
        self.health = HealthChecker(self.registry, s.routing.health.interval_s, self.metrics)
        await self.composition.enter_async_context(self.health)
        stages = [build_stage(name, services) for name in s.chain]
        router = Router(self.registry, s.routing, self.metrics, gate=services.gate)
        self.handler = compose(stages, router)
        self.log.info("gateway_started", backends=len(self.backends), models=len(s.models), chain=list(s.chain))

    async def successor(self, settings: Settings) -> Gateway:
        """The request path of ``settings`` over this gateway's services; raises (closing what it built)
        when a part cannot be built: a policy that does not compile, a backend type, a tool."""
        assert self.services is not None and self._postgres is not None, "successor of a started gateway"
        new = Gateway(settings, self.log, self.metrics, self.backend_factory)
        new._postgres, new.control = self._postgres, self.control
        try:
            new.services = respawn_services(self.services, settings, self._postgres, new.composition)
            await new.compose(new.services)
        except BaseException:
            await new.aclose()
            raise
        return new

    async def retire(self) -> None:
        """Close what this configuration's request path owns (a successor's respawned services included;
        the services it shares stay with the gateway that started them)."""
        await self.composition.aclose()

    def _serve_background(self, services: Services) -> None:
        """Run background responses in this process: from the start when the database is a configured
        server (or already open for keys), else from the state's first use; stopped first on shutdown."""
        state = services.responses
        history = History(state.responses, state.conversations)
        state.serve_background(BackgroundWorker(self, InputFiles(services.vector_stores, services.gate), history,
                                                state))
        if self.settings.postgres.dsn is not None or self.settings.auth.store == "postgres":
            state.open_soon()
        self.resources.push_async_callback(state.aclose)

    def _serve_batches(self, services: Services) -> None:
        """This replica's job worker runs batch lines through ``self.handler``: started now when the database
        is a configured server (any replica picks up work), else on the Batch API's first use."""
        batches = services.batches
        if batches is None:
            return
        state = services.responses
        BatchRunner(batches, BatchLines(self, InputFiles(services.vector_stores, services.gate),
                                        History(state.responses, state.conversations)), self.log,
                    serving=lambda: self.metrics.serving)
        self.resources.push_async_callback(batches.jobs.aclose)
        if self.settings.postgres.dsn is not None:
            task = asyncio.create_task(_open_quietly(batches, self.log))
            self.resources.callback(task.cancel)

    async def aclose(self) -> None:
        await self.composition.aclose()
        await self.resources.aclose()
        self.log.flush()


# What can stop a valid configuration from starting: its files, its stores, its sockets.
STARTUP_ERRORS: tuple[type[BaseException], ...] = (ConfigError, PolicyLoadError, OSError)


def startup_message(exc: BaseException) -> str:
    """One line, naming the config key where the error says it."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, PolicyLoadError) and not text.startswith("policy."):
        return f"policy.paths: {text}"
    return text


async def _open_quietly(batches: BatchService, log: JsonLog, retry_s: float = 5.0) -> None:
    """Start this replica's job worker; while the database does not answer, try again every ``retry_s``."""
    while True:
        try:
            await batches.ready()
            return
        except (ServiceOverloaded, OSError) as exc:
            log.error("jobs_start_failed", error=f"{type(exc).__name__}: {exc}"[:300])
        await asyncio.sleep(retry_s)


async def _not_started(ctx: RequestContext) -> Reply:
    raise ServiceOverloaded("The gateway is starting up.")

