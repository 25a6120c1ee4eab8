"""The route table: every route is declared with a door (auth mode and policy action), and with
``authn`` configured every route that is not public answers 401 without a key, whatever its body."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.routing import Router
from starlette.testclient import TestClient

from gateway.app import build_app
from gateway.http.front_door import DoorRoute
from gateway.http.mcp.envelope import jsonrpc_body
from gateway.http.messages.errors import anthropic_body
from gateway.kernel.config import settings_from_mapping
from gateway.kernel.observability.logging import JsonLog
from gateway.kernel.observability.metrics import Metrics
from gateway.reconcile.switch import Switch
from gateway.wiring import Gateway

KEY, ADMIN = "sk-route-table-user-0123456789", "sk-route-table-admin-0123456789"
CONFIG: dict[str, Any] = {
    "backends": [{"name": "nowhere", "base_url": "http://127.0.0.1:9/v1"}],
    "models": [{"name": "m", "deployments": [{"backend": "nowhere"}]}],
    "chain": ["authn", "authz", "limits"],
    "auth": {"static_keys": [{"key": KEY, "key_id": "user", "tenant": "t"},
                             {"key": ADMIN, "key_id": "admin", "tenant": "ops", "roles": ["admin"]}]},
    "policy": {"reload_interval_s": 0},
    "tools": {"node_secret": "route-table-node-secret"},
}
MODES = {"key", "admin", "node", "none"}


def route_table(app: Any) -> list[Any]:
    while not isinstance(app, Router):
        # down through the transport middlewares, then the switch's current generation
        if isinstance(app, Switch):
            assert app.current is not None, "the route table is built on lifespan startup"
            app = app.current.app
        else:
            app = app.app
    return list(app.routes)


@pytest.fixture(scope="module")
def client() -> Iterator[tuple[TestClient, list[Any]]]:
    gateway = Gateway(settings_from_mapping(CONFIG, {}), JsonLog(io.BytesIO()), Metrics())
    app = build_app(gateway)
    with TestClient(app, raise_server_exceptions=False) as http:
        yield http, route_table(app)


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def test_every_route_has_an_auth_mode_and_an_action(client: tuple[TestClient, list[Any]]) -> None:
    _, table = client
    assert len(table) > 20
    for route in table:
        assert isinstance(route, DoorRoute), f"{route.path} was not declared through the front door"
        assert route.door.auth in MODES and route.door.action and route.door.label, route.path
    paths = {r.path for r in table}
    assert {"/v1/chat/completions", "/v1/files", "/v1/vector_stores/{store_id}/search", "/admin/keys",
            "/admin/usage", "/internal/nodes/heartbeat", "/v1/models", "/healthz", "/v1/messages",
            "/v1/messages/count_tokens"} <= paths


def test_without_a_key_every_non_public_route_is_401(client: tuple[TestClient, list[Any]]) -> None:
    http, table = client
    checked = 0
    for route in table:
        for method in sorted(route.methods - {"HEAD"}):
            response = http.request(method, concrete(route.path), content=b"not even json")
            if route.door.auth == "none":
                assert response.status_code in (200, 503), route.path  # /readyz: the backend is nowhere
                continue
            assert response.status_code == 401, f"{method} {route.path}: {response.status_code} {response.text}"
            if route.door.errors is anthropic_body:  # Anthropic's envelope: the type names the failure
                assert response.json()["error"]["type"] == "authentication_error", route.path
            elif route.door.errors is jsonrpc_body:  # /mcp: a JSON-RPC error, the gateway's code in its data
                assert response.json()["error"]["data"]["code"] == "invalid_api_key", route.path
            else:
                assert response.json()["error"]["code"] in ("invalid_api_key", "node_unauthorized")
            checked += 1
    assert checked > 20


def test_admin_routes_need_the_admin_role(client: tuple[TestClient, list[Any]]) -> None:
    http, table = client
    user, admin = {"authorization": f"Bearer {KEY}"}, {"authorization": f"Bearer {ADMIN}"}
    for route in (r for r in table if r.door.auth == "admin"):
        for method in sorted(route.methods - {"HEAD"}):
            refused = http.request(method, concrete(route.path), headers=user)
            assert refused.status_code == 403, f"{method} {route.path}"
    assert http.get("/admin/keys", headers=admin).status_code == 200
    assert http.get("/admin/usage", headers=admin).status_code == 200


def test_the_access_log_names_the_route_and_the_error_code() -> None:
    out = io.BytesIO()
    gateway = Gateway(settings_from_mapping(CONFIG, {}), JsonLog(out), Metrics())
    with TestClient(build_app(gateway)) as http:
        http.get("/v1/files")
        http.get("/v1/vector_stores")
        gateway.log.flush()
    lines = [line for line in out.getvalue().decode().splitlines() if '"status":401' in line]
    assert any('"route":"files"' in line and '"error":"invalid_api_key"' in line for line in lines), lines
    assert any('"route":"vector_stores"' in line for line in lines)
