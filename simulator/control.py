"""Run-time control routes under ``/_sim`` (never authenticated, never fault-injected)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from simulator.errors import SimError
from simulator.pipeline import sim_state
from simulator.wire import json_response


async def health(request: Request) -> Response:
    return json_response({"status": "ok", "name": sim_state(request).behaviour.name})


async def get_config(request: Request) -> Response:
    return json_response(sim_state(request).behaviour.snapshot())


async def post_config(request: Request) -> Response:
    """Change instance defaults: ttft_ms, itl_ms, status, disconnect_after, retry_after, error_rate, ..."""
    try:
        changes = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        raise SimError(400, "config body must be JSON") from None
    if not isinstance(changes, dict):
        raise SimError(400, "config body must be a JSON object")
    behaviour = sim_state(request).behaviour
    behaviour.update(changes)
    return json_response(behaviour.snapshot())


async def list_requests(request: Request) -> Response:
    return json_response({"object": "list", "data": list(sim_state(request).requests)})


async def clear_requests(request: Request) -> Response:
    sim_state(request).requests.clear()
    return json_response({"deleted": True})
