"""The node's HTTP surface: ``POST /v1/jobs``, ``POST /v1/jobs/{id}/answer`` (code mode, see
``executors/inner.py``) and ``GET /v1/status``, signed both ways, served over TLS."""

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
from executors.inner import InnerCall, answer_from_dict
from executors.node.agent import NodeAgent, UnknownJob
from executors.node.auth import SignatureMiddleware
from executors.node.heartbeat import Heartbeater
from executors.node.identity import NodeIdentity
from executors.spec import Result, job_from_dict, result_to_dict


def _agent(request: Request) -> NodeAgent:
    agent: NodeAgent = request.app.state.agent
    return agent


async def run_job(request: Request) -> JSONResponse:
    try:
        job = job_from_dict(json.loads(await request.body()))
        agent = _agent(request)
        outcome = await (agent.start_code(job) if job.runtime == "code" else agent.run(job))
    except ValueError:
        return JSONResponse({"error": "body must be JSON"}, status_code=400)
    except JobRejected as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    except SandboxError as exc:
        return JSONResponse({"error": f"sandbox failure: {exc}"}, status_code=503)
    return _outcome(outcome)


async def answer_call(request: Request) -> JSONResponse:
    """The control plane's answer to a code job's pending call: the next pending call, or the result."""
    try:
        data = json.loads(await request.body())
        call_id = data.get("call_id") if isinstance(data, dict) else None
        if not isinstance(call_id, str):
            raise JobRejected("an answer needs a string call_id")
        outcome = await _agent(request).answer(request.path_params["job_id"], call_id, answer_from_dict(data["answer"]))
    except UnknownJob:
        return JSONResponse({"error": "no running code job with this id"}, status_code=404)
    except (ValueError, KeyError):
        return JSONResponse({"error": "body must be JSON with call_id and answer"}, status_code=400)
    except JobRejected as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    except SandboxError as exc:
        return JSONResponse({"error": f"sandbox failure: {exc}"}, status_code=503)
    return _outcome(outcome)


def _outcome(outcome: InnerCall | Result) -> JSONResponse:
    if isinstance(outcome, InnerCall):
        return JSONResponse({"pending": outcome.to_dict()})
    return JSONResponse(result_to_dict(outcome))


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
        routes=[Route("/v1/jobs", run_job, methods=["POST"]),
                Route("/v1/jobs/{job_id}/answer", answer_call, methods=["POST"]),
                Route("/v1/status", status, methods=["GET"])],
        middleware=[Middleware(SignatureMiddleware, node_id=identity.node_id, boot=boot, key=identity.key,
                               control_plane=identity.control_plane)],
        lifespan=lifespan,
    )
    app.state.agent = agent
    return app
