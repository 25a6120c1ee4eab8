"""A key id belongs to one credential: a virtual key never takes a static key's id (nor a taken one, nor a
JWT bearer's), in memory and in PostgreSQL, and the admin API never revokes or rotates a static key."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.app import build_app
from gateway.kernel.config import settings_from_mapping
from gateway.kernel.config.sections.auth import AuthSettings, StaticKey
from gateway.kernel.errors import AuthenticationFailed
from gateway.kernel.observability.logging import JsonLog
from gateway.kernel.observability.metrics import Metrics
from gateway.services.identity.authenticator import Authenticator
from gateway.services.identity.memory import MemoryKeyStore
from gateway.services.identity.secrets import KeyHasher, new_secret
from gateway.services.identity.types import KeyExists, KeyRecord
from gateway.wiring import Gateway

USER, ADMIN = "sk-key-ids-user-0123456789abcdef", "sk-key-ids-admin-0123456789abcdef"


def config(**extra: object) -> dict[str, Any]:
    return {
        "backends": [{"name": "nowhere", "base_url": "http://127.0.0.1:9/v1"}],
        "models": [{"name": "m", "deployments": [{"backend": "nowhere"}]}],
        "chain": ["authn"],
        "auth": {"static_keys": [{"key": USER, "key_id": "user", "tenant": "t"},
                                 {"key": ADMIN, "key_id": "admin", "tenant": "ops", "roles": ["admin"]}],
                 **extra},
    }


@pytest.fixture(params=["memory", "postgres"])
def admin_api(request: pytest.FixtureRequest) -> Iterator[TestClient]:
    extra: dict[str, Any] = {}
    if request.param == "postgres":
        extra = {"postgres": {"dsn": request.getfixturevalue("postgres_dsn")}}
    settings = config(store=request.param)
    gateway = Gateway(settings_from_mapping({**settings, **extra}, {}), JsonLog(io.BytesIO()), Metrics())
    with TestClient(build_app(gateway), headers={"authorization": f"Bearer {ADMIN}"}) as http:
        yield http


def assert_error(resp: Any, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert (error["code"], error["type"], error["param"]) == (code, "invalid_request_error", "key_id")
    assert error["message"]


def test_a_virtual_key_cannot_take_a_static_a_taken_or_a_jwt_key_id(admin_api: TestClient) -> None:
    for static in ("user", "admin"):
        assert_error(admin_api.post("/admin/keys", json={"tenant": "x", "key_id": static}), 409, "key_exists")
    key_id = f"team-{uuid.uuid4().hex[:8]}"
    created = admin_api.post("/admin/keys", json={"tenant": "x", "key_id": key_id})
    assert created.status_code == 201 and created.json()["key_id"] == key_id
    assert_error(admin_api.post("/admin/keys", json={"tenant": "y", "key_id": key_id}), 409, "key_exists")
    assert_error(admin_api.post("/admin/keys", json={"tenant": "x", "key_id": "jwt:alice"}), 409, "key_exists")
    assert {"user", "admin", "jwt:alice"}.isdisjoint(r["key_id"] for r in admin_api.get("/admin/keys").json()["data"])


def test_the_admin_api_neither_revokes_nor_rotates_a_static_key(admin_api: TestClient) -> None:
    for method, path in (("POST", "/admin/keys/user/rotate"), ("POST", "/admin/keys/user/revoke"),
                         ("DELETE", "/admin/keys/user"), ("POST", "/admin/keys/admin/rotate")):
        resp = admin_api.request(method, path)
        assert_error(resp, 409, "static_key")
        assert "auth.static_keys" in resp.json()["error"]["message"]
    assert admin_api.get("/v1/models", headers={"authorization": f"Bearer {USER}"}).status_code == 200
    assert admin_api.get("/admin/keys").status_code == 200  # the admin's static key still works too


async def test_a_stored_key_with_a_static_id_never_poses_as_the_static_key() -> None:
    """A row written before ids were checked (or straight into the table) is refused, the static key is not."""
    store = MemoryKeyStore()
    a = Authenticator(AuthSettings(static_keys=(StaticKey(key=USER, key_id="user", tenant="t"),)), store,
                      KeyHasher(None))
    secret = new_secret("sk-test-")
    await store.create(KeyRecord("user", a.hasher.hash(secret), "intruders", rpm=1_000_000))
    with pytest.raises(AuthenticationFailed):
        await a.authenticate({"authorization": f"Bearer {secret}"})
    assert (await a.authenticate({"authorization": f"Bearer {USER}"})).tenant == "t"
    with pytest.raises(KeyExists):
        await a.create(KeyRecord("user", a.hasher.hash(new_secret("sk-test-")), "t"))
