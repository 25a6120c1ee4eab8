"""The error layer alone: routing errors and crashes become OpenAI envelopes, never tracebacks."""

from __future__ import annotations

import io
import json

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, Router
from starlette.testclient import TestClient

from gateway.kernel.errors import GatewayError, QuotaExceeded
from gateway.kernel.observability.exchange import exchange_of
from gateway.kernel.observability.logging import JsonLog
from middleware.transport import ErrorMiddleware


async def crash(request: Request) -> Response:
    raise ValueError("secret internals")


async def quota(request: Request) -> Response:
    raise QuotaExceeded("Budget exhausted.")


async def crash_after_the_door(request: Request) -> Response:
    exchange_of(request.scope).error_body = lambda err: json.dumps({"mine": err.status}).encode()
    raise ValueError("secret internals")


async def fine(request: Request) -> Response:
    return PlainTextResponse("ok")


def client(stream: io.BytesIO) -> TestClient:
    router = Router(routes=[
        Route("/crash", crash), Route("/quota", quota), Route("/entered", crash_after_the_door),
        Route("/fine", fine, methods=["POST"]),
    ])
    return TestClient(ErrorMiddleware(router, JsonLog(stream)), raise_server_exceptions=False)


def test_a_crash_is_a_500_envelope_and_a_log_line_without_the_message() -> None:
    logs = io.BytesIO()
    resp = client(logs).get("/crash")
    assert resp.status_code == 500
    assert resp.json()["error"]["code"] == "internal_error"
    assert "secret internals" not in resp.text and "Traceback" not in resp.text
    (line,) = [json.loads(x) for x in logs.getvalue().splitlines()]
    assert line["event"] == "unhandled_error" and line["exception"] == "ValueError"


def test_gateway_errors_keep_their_status_and_type() -> None:
    resp = client(io.BytesIO()).get("/quota")
    assert resp.status_code == 429 and resp.json()["error"]["type"] == "insufficient_quota"


def test_unknown_url_and_wrong_method() -> None:
    c = client(io.BytesIO())
    assert c.get("/nowhere").json()["error"]["code"] == "unknown_url"
    wrong = c.get("/fine")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
    assert c.post("/fine").text == "ok"


def test_a_crash_past_a_door_is_rendered_in_that_doors_envelope() -> None:
    resp = client(io.BytesIO()).get("/entered")
    assert resp.status_code == 500 and resp.json() == {"mine": 500}
    assert GatewayError("x").body() != resp.content
