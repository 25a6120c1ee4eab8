"""The transport middleware, each alone, on a trivial ASGI app."""

from __future__ import annotations

import io
import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, Router
from starlette.testclient import TestClient

from gateway.kernel.errors import GatewayError
from gateway.kernel.observability.exchange import RequestIds, exchange_of
from gateway.kernel.observability.logging import JsonLog
from gateway.kernel.observability.metrics import Metrics
from middleware.transport import AccessLogMiddleware, BodyLimitMiddleware, ErrorMiddleware, RequestIdMiddleware


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    exchange_of(request.scope).route = "echo"
    return JSONResponse({"size": len(body), "id": exchange_of(request.scope).request_id})


def app() -> Starlette:
    return Starlette(routes=[Route("/echo", echo, methods=["POST"])])


def bare() -> Router:
    """A bare router, as the gateway's: routing errors and raised errors reach the outer middleware."""
    return Router(routes=[Route("/echo", echo, methods=["POST"])])


def test_request_id_minted_and_echoed() -> None:
    client = TestClient(RequestIdMiddleware(app(), RequestIds()))
    first, second = client.post("/echo"), client.post("/echo")
    assert first.headers["x-request-id"] == first.json()["id"]
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


def test_request_id_kept_when_sane_replaced_when_not() -> None:
    client = TestClient(RequestIdMiddleware(app(), RequestIds()))
    assert client.post("/echo", headers={"x-request-id": "abc-1"}).headers["x-request-id"] == "abc-1"
    assert client.post("/echo", headers={"x-request-id": "x" * 200}).headers["x-request-id"].startswith("req_")


def test_body_limit_refuses_declared_and_streamed_bodies() -> None:
    limited = ErrorMiddleware(BodyLimitMiddleware(bare(), 1024), JsonLog(io.BytesIO()))
    client = TestClient(RequestIdMiddleware(limited, RequestIds()))
    assert client.post("/echo", content=b"x" * 1024).json()["size"] == 1024
    refused = client.post("/echo", content=b"x" * 1025)
    assert refused.status_code == 413
    assert refused.json()["error"]["code"] == "request_too_large"
    streamed = client.post("/echo", content=iter([b"x" * 1000, b"x" * 1000]))
    assert streamed.status_code == 413


def test_errors_before_any_route_use_the_envelope_of_their_path_prefix() -> None:
    def plain(err: GatewayError) -> bytes:
        return f"plain {err.status}".encode()

    limited = ErrorMiddleware(BodyLimitMiddleware(bare(), 10), JsonLog(io.BytesIO()), envelopes={"/echo": plain})
    client = TestClient(RequestIdMiddleware(limited, RequestIds()))
    assert client.post("/echo", content=b"x" * 11).content == b"plain 413"
    assert client.get("/echo").content == b"plain 405"
    assert client.post("/echo/more").content == b"plain 404"
    assert client.post("/echoes").json()["error"]["code"] == "unknown_url"


def test_access_log_writes_one_json_line_and_counts() -> None:
    stream = io.BytesIO()
    metrics = Metrics()
    inner = AccessLogMiddleware(app(), JsonLog(stream), metrics)
    client = TestClient(RequestIdMiddleware(inner, RequestIds()))
    resp = client.post("/echo", content=b"secret prompt")
    (line,) = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert line["request_id"] == resp.headers["x-request-id"]
    assert line["status"] == 200 and line["route"] == "echo" and line["event"] == "request"
    assert b"secret prompt" not in stream.getvalue()
    value = metrics.registry.get_sample_value(
        "llmops_requests_total", {"route": "echo", "backend": "none", "status": "200"}
    )
    assert value == 1
