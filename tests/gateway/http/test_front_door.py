"""The front door alone: auth modes, the policy question it asks (well-formed input), and rate limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request

from gateway.http.front_door import Door, FrontDoor
from gateway.http.messages.errors import anthropic_body
from gateway.http.openapi import Api
from gateway.kernel.config.sections.auth import AuthSettings
from gateway.kernel.config.sections.limits import LimitsSettings
from gateway.kernel.context import Principal
from gateway.kernel.policy import Decision
from gateway.services.identity.authenticator import Authenticator
from gateway.services.identity.memory import MemoryKeyStore
from gateway.services.identity.secrets import KeyHasher
from gateway.services.limits.limiter import LocalLimiter
from gateway.services.policy.gate import PolicyGate

KEY = "sk-front-door-0123456789abcdef"


class Recorder:
    def __init__(self, allow: bool = True) -> None:
        self.allow = allow
        self.documents: list[Mapping[str, Any]] = []

    async def decide(self, action: str, document: Mapping[str, Any]) -> Decision:
        self.documents.append(document)
        return Decision(self.allow, () if self.allow else ("no",), decision_id="dec_1")


def door(engine: Recorder | None, *, authn: bool = True, rpm: int | None = None) -> FrontDoor:
    auth = AuthSettings.model_validate({"static_keys": [{"key": KEY, "key_id": "k1", "tenant": "acme"}]})
    limits = LimitsSettings.model_validate({"key": {"rpm": rpm}} if rpm else {})
    return FrontDoor(authenticator=Authenticator(auth, MemoryKeyStore(), KeyHasher(None)), authn=authn,
                     admin_role="admin", gate=PolicyGate(engine), limiter=LocalLimiter(), limits=limits)


async def whoami(request: Request, principal: Principal | None) -> dict[str, Any]:
    return {"tenant": principal.tenant if principal else None}


def client(front: FrontDoor, d: Door) -> httpx.AsyncClient:
    app = Starlette(routes=[front.json("/v1/vector_stores/{store_id}/search", "POST", d, whoami, Api("search"))])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


def search_door(limited: bool = False) -> Door:
    return Door("key", "rag_query", "vector_store_search", limited=limited,
                resource=lambda r: {"vector_stores": [r.path_params["store_id"]]})


async def test_the_policy_is_asked_with_a_well_formed_input() -> None:
    engine = Recorder()
    async with client(door(engine), search_door()) as http:
        r = await http.post("/v1/vector_stores/vs_1/search", headers={"authorization": f"Bearer {KEY}"})
    assert r.status_code == 200 and r.json() == {"tenant": "acme"}
    doc = engine.documents[0]
    assert doc["action"] == "rag_query" and doc["subject"]["tenant"] == "acme"
    resource = doc["resource"]
    assert resource["vector_stores"] == ["vs_1"] and resource["model"] == ""  # a string, never null
    assert all(v is not None for v in resource.values())


async def test_a_deny_is_a_403_with_the_decision_id() -> None:
    async with client(door(Recorder(allow=False)), search_door()) as http:
        r = await http.post("/v1/vector_stores/vs_1/search", headers={"authorization": f"Bearer {KEY}"})
    assert r.status_code == 403 and r.headers["x-policy-decision-id"] == "dec_1"
    assert r.json()["error"]["code"] == "policy_denied"


async def test_without_authn_the_caller_is_the_default_tenant_and_no_key_is_needed() -> None:
    async with client(door(None, authn=False), search_door()) as http:
        r = await http.post("/v1/vector_stores/vs_1/search")
    assert r.status_code == 200 and r.json() == {"tenant": None}


async def test_limited_routes_draw_on_the_keys_request_rate() -> None:
    async with client(door(None, rpm=2), search_door(limited=True)) as http:
        auth = {"authorization": f"Bearer {KEY}"}
        codes = [(await http.post("/v1/vector_stores/vs_1/search", headers=auth)).status_code for _ in range(3)]
        last = await http.post("/v1/vector_stores/vs_1/search", headers=auth)
    assert codes == [200, 200, 429]
    assert last.headers["retry-after"] and last.json()["error"]["code"] == "rate_limit_exceeded"


async def test_unlimited_routes_do_not() -> None:
    async with client(door(None, rpm=1), search_door(limited=False)) as http:
        auth = {"authorization": f"Bearer {KEY}"}
        codes = [(await http.post("/v1/vector_stores/vs_1/search", headers=auth)).status_code for _ in range(3)]
    assert codes == [200, 200, 200]


async def test_a_door_renders_its_errors_in_the_envelope_it_names() -> None:
    anthropic = Door("key", "rag_query", "vector_store_search", limited=True, errors=anthropic_body,
                     resource=lambda r: {"vector_stores": [r.path_params["store_id"]]})
    async with client(door(None, rpm=1), anthropic) as http:
        missing = await http.post("/v1/vector_stores/vs_1/search")
        auth = {"x-api-key": KEY}  # Anthropic clients send their key this way
        codes = [(await http.post("/v1/vector_stores/vs_1/search", headers=auth)).status_code for _ in range(2)]
        limited = await http.post("/v1/vector_stores/vs_1/search", headers=auth)
    assert missing.status_code == 401 and missing.json()["type"] == "error"
    assert missing.headers["www-authenticate"] == 'Bearer realm="llmops-gateway"'
    error = missing.json()["error"]
    assert error["type"] == "authentication_error" and "x-api-key" in error["message"]
    assert codes == [200, 429]
    assert limited.json()["error"]["type"] == "rate_limit_error" and limited.headers["retry-after"]
