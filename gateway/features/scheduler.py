"""Feature module: the node registry, the scheduler (``SCHEDULER``) and the heartbeat route."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.kernel.context import StateKey
from gateway.runtime import Runtime
from routers.scheduler.heartbeat import HeartbeatEndpoint
from routers.scheduler.nodes import node_from_static
from routers.scheduler.redis_registry import RedisNodeRegistry
from routers.scheduler.registry import MemoryNodeRegistry, NodeRegistry
from routers.scheduler.runner import NodeClients
from routers.scheduler.scheduler import SCHEDULER, Scheduler

HEARTBEATS: StateKey[HeartbeatEndpoint] = StateKey("node_heartbeats")


def node_secret(runtime: Runtime) -> bytes | None:
    secret = runtime.settings.tools.node_secret
    return secret.get_secret_value().encode() if secret is not None and secret.get_secret_value() else None


async def start(runtime: Runtime) -> None:
    tools = runtime.settings.tools
    secret = node_secret(runtime)
    if secret is None and not tools.nodes:
        return  # no data plane configured: server-side tools cannot run
    static = [node_from_static(n) for n in tools.nodes]
    client = runtime.redis()
    ttl = tools.scheduler.node_ttl_s
    registry: NodeRegistry = (
        RedisNodeRegistry(client, ttl, static) if client is not None else MemoryNodeRegistry(ttl, static)
    )
    runner = NodeClients(secret or b"")
    runtime.resources.push_async_callback(runner.aclose)
    scheduler = Scheduler(registry, runner, tools.scheduler)
    runtime.provide(SCHEDULER, scheduler)
    if secret is not None:
        runtime.provide(HEARTBEATS, HeartbeatEndpoint(secret, scheduler, runtime.log))
    runtime.log.info("tool_scheduler_started", static_nodes=len(static), shared=client is not None)


def routes(runtime: Runtime) -> list[BaseRoute]:
    secret = node_secret(runtime)
    if secret is None:
        return []  # never an unauthenticated endpoint

    async def heartbeat(request: Request) -> Response:
        endpoint = runtime.lookup(HEARTBEATS)
        if endpoint is None:
            return JSONResponse({"error": "starting"}, status_code=503)
        return await endpoint.handle(request)

    return [Route(HeartbeatEndpoint.path, heartbeat, methods=["POST"])]
