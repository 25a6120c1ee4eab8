"""The shared front half of every ``/v1`` endpoint.

record -> authenticate -> parse -> resolve overrides -> inject errors -> wait TTFT -> handler.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.requests import Request
from starlette.responses import Response

from simulator.behaviour import Overrides, resolve_overrides
from simulator.errors import SimError
from simulator.state import SimState
from simulator.wire import JSONObject

Handler = Callable[["SimCall"], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class SimCall:
    """One accepted request: parsed JSON body (or form fields) plus its effective overrides."""

    state: SimState
    request: Request
    body: JSONObject
    overrides: Overrides
    form: FormData | None = None


def sim_state(request: Request) -> SimState:
    state: SimState = request.app.state.sim
    return state


def _headers_dict(headers: Headers) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in headers.items():
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def _form_fields(form: FormData) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            fields[key] = {"filename": value.filename, "size": value.size, "content_type": value.content_type}
        else:
            fields[key] = value
    return fields


def _parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return exc


def _check_auth(api_key: str | None, headers: Headers) -> None:
    if api_key is None:
        return
    bearer = headers.get("authorization", "")
    offered = bearer[7:] if bearer[:7].lower() == "bearer " else headers.get("x-api-key", "")
    if not hmac.compare_digest(offered.encode(), api_key.encode()):
        raise SimError(401, "Incorrect API key provided.")


def _inject_error(state: SimState, overrides: Overrides) -> None:
    status = overrides.status
    if status is None or status < 400:
        status = state.behaviour.error_status if state.should_fail() else None
    if status is not None:
        raise SimError(status, f"Simulated error (status {status})", retry_after=overrides.retry_after)


def _entry(request: Request, body: Any, form: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "time": time.time(),
        "method": request.method,
        "path": request.url.path,
        "query": request.url.query,
        "headers": _headers_dict(request.headers),
        "body": None if isinstance(body, Exception) else body,
        "form": form,
    }


async def _read_body(request: Request, form: bool) -> tuple[Any, FormData | None]:
    if form:
        data = await request.form()
        return None, data
    raw = await request.body()
    return (_parse_json(raw) if raw else None), None


async def prepare(request: Request, *, form: bool = False, json: bool = True) -> SimCall:
    state = sim_state(request)
    body, form_data = await _read_body(request, form)
    state.record(_entry(request, body, None if form_data is None else _form_fields(form_data)))
    _check_auth(state.behaviour.api_key, request.headers)
    if json and not isinstance(body, dict):
        raise SimError(400, "We could not parse the JSON body of your request: expected a JSON object.")
    parsed: JSONObject = body if isinstance(body, dict) else {}
    overrides = resolve_overrides(state.behaviour.defaults(), request.headers, parsed.get("sim"))
    _inject_error(state, overrides)
    if overrides.ttft_ms > 0:
        await asyncio.sleep(overrides.ttft_ms / 1000)
    return SimCall(state, request, parsed, overrides, form_data)


def endpoint(handler: Handler, *, form: bool = False, json: bool = True) -> Endpoint:
    """Wrap a handler so it only sees accepted requests."""

    async def run(request: Request) -> Response:
        return await handler(await prepare(request, form=form, json=json))

    return run
