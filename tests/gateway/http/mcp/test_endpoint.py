"""What ``/mcp`` refuses before the SDK sees a request, and in which envelope."""

from __future__ import annotations

import orjson
import pytest
from starlette.requests import Request

from gateway.http.mcp.endpoint import loopback, refused_host, refused_media
from gateway.http.mcp.envelope import jsonrpc_body
from gateway.kernel.errors import AuthenticationFailed, RateLimited

JSON_SSE = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def request(headers: dict[str, str]) -> Request:
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "POST", "path": "/mcp", "headers": raw})


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_names(host: str) -> None:
    assert loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.1", "example.com", "", None])
def test_other_names(host: str | None) -> None:
    assert not loopback(host)


def test_an_open_gateway_on_loopback_refuses_other_hosts_and_origins() -> None:
    assert refused_host(request({"host": "127.0.0.1:8080"})) is None
    assert refused_host(request({"host": "[::1]:8080", "origin": "http://localhost:3000"})) is None
    rebound = refused_host(request({"host": "evil.example:8080"}))
    assert rebound is not None and rebound.status == 421 and rebound.code == "invalid_host"
    page = refused_host(request({"host": "127.0.0.1:8080", "origin": "https://evil.example"}))
    assert page is not None and page.status == 403 and page.code == "invalid_origin"
    assert refused_host(request({"host": "[::1"})) is not None  # malformed, not an error


def test_media_types_are_checked_in_the_routes_envelope() -> None:
    assert refused_media(request(JSON_SSE)) is None
    assert refused_media(request({**JSON_SSE, "content-type": "Application/JSON; charset=utf-8"})) is None
    assert refused_media(request({**JSON_SSE, "accept": "*/*"})) is None
    no_body = refused_media(request({"accept": JSON_SSE["accept"]}))
    assert no_body is not None and no_body.status == 415
    json_only = refused_media(request({**JSON_SSE, "accept": "application/json"}))
    assert json_only is not None and json_only.status == 406


def test_door_errors_are_json_rpc_errors_with_the_gateways_code() -> None:
    body = orjson.loads(jsonrpc_body(AuthenticationFailed("Incorrect API key provided: ***.")))
    assert body == {"jsonrpc": "2.0", "id": None,
                    "error": {"code": -32600, "message": "Incorrect API key provided: ***.",
                              "data": {"status": 401, "type": "invalid_request_error", "code": "invalid_api_key"}}}
    limited = orjson.loads(jsonrpc_body(RateLimited("slow down")))
    assert limited["error"]["data"]["status"] == 429
