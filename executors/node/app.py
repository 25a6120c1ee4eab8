"""The node's HTTP surface: ``POST /v1/jobs`` and ``GET /v1/status``, signed both ways, served over TLS."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from executors.errors import JobRejected, SandboxError
from executors.node.agent import NodeAgent
from executors.node.auth import SignatureMiddleware
from executors.node.heartbeat import Heartbeater
from executors.node.identity import NodeIdentity
from executors.spec import job_from_dict, result_to_dict


def _agent(request: Request) -> NodeAgent:
    agent: NodeAgent = request.app.state.agent
    return agent


async def run_job(request: Request) -> JSONResponse:
    try:
        job = job_from_dict(json.loads(await request.body()))
        result = await _agent(request).run(job)
    except ValueError:
        return JSONResponse({"error": "body must be JSON"}, status_code=400)
    except JobRejected as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    except SandboxError as exc:
        return JSONResponse({"error": f"sandbox failure: {exc}"}, status_code=503)
    return JSONResponse(result_to_dict(result))


async def status(request: Request) -> JSONResponse:
    return JSONResponse(_agent(request).status())


def create_app(
    agent: NodeAgent, *, identity: NodeIdentity, boot: str, heartbeat: Heartbeater | None = None
) -> Starlette:
    """The node app; its lifespan starts and closes the agent (and the heartbeats, if given)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await agent.start()
        if heartbeat is not None:
            await heartbeat.start()
        try:
            yield
        finally:
            if heartbeat is not None:
                await heartbeat.aclose()
            await agent.aclose()

    app = Starlette(
        routes=[Route("/v1/jobs", run_job, methods=["POST"]), Route("/v1/status", status, methods=["GET"])],
        middleware=[Middleware(SignatureMiddleware, node_id=identity.node_id, boot=boot, key=identity.key,
                               control_plane=identity.control_plane)],
        lifespan=lifespan,
    )
    app.state.agent = agent
    return app
