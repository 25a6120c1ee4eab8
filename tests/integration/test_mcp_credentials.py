"""Per-subject upstream MCP tokens and pinned tool definitions through a real gateway process and real
PostgreSQL (this module's own database): a caller stores, lists and deletes its own tokens and never reads
one back; one subject's token is never another's; a changed definition is held until an admin approves it
through the admin API, then offered (the guard in this process acting as a second replica); a bad key
stops startup with one line."""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest
import pytest_asyncio
import yaml

from gateway.kernel.config.sections.mcp import McpOAuth
from gateway.kernel.config.sections.stores import PostgresSettings
from gateway.kernel.mcp import UpstreamTool, subject_id
from gateway.services.mcp.credentials import PostgresCredentials, Sealer
from gateway.services.mcp.oauth import OAuthFlows, OAuthServer
from gateway.services.mcp.pins import PinnedDefinitions
from gateway.services.mcp.pool import McpPool
from gateway.services.stores.postgres import Postgres
from tests.conftest import GatewayFactory
from tests.support.configs import sim_config
from tests.support.processes import ROOT, ServerProcess, python_module
from tests.support.services import new_database

pytestmark = pytest.mark.integration

KEY_A, KEY_B, ADMIN = "sk-mcpcred-a-0123456789", "sk-mcpcred-b-0123456789", "sk-mcpcred-admin-0123456789"
SECRET = os.urandom(32)
TOKEN_A, TOKEN_B = "ghp_alice_0123456789abcdef", "ghp_bob_fedcba9876543210"
SERVERS = [{"name": "gh", "url": "http://127.0.0.1:9/mcp", "credential": "per_subject"},
           {"name": "open", "url": "http://127.0.0.1:9/mcp", "on_change": "block"}]
REDIRECT, OAUTH_URL = "http://gateway.test/v1/mcp/oauth/callback", "http://127.0.0.1:9/oauth-mcp"


def oauth_block(server_url: str) -> dict[str, object]:
    return {"authorize_url": f"{server_url}/authorize", "token_url": f"{server_url}/token",
            "client_id": "llmops-gateway", "client_secret": "${OAUTH_SECRET}", "scopes": ["repo"],
            "redirect_uri": REDIRECT}


def gateway_config(sim_url: str, dsn: str, oauth_url: str = "http://127.0.0.1:9") -> dict[str, object]:
    servers = [*SERVERS, {"name": "gho", "url": OAUTH_URL, "credential": "per_subject",
                          "oauth": oauth_block(oauth_url)}]
    return sim_config(
        sim_url, "sim-chat", chain=["authn", "authz", "limits"], policy={"reload_interval_s": 0},
        auth={"static_keys": [{"key": KEY_A, "key_id": "a", "tenant": "team"},
                              {"key": KEY_B, "key_id": "b", "tenant": "team"},
                              {"key": ADMIN, "key_id": "admin", "tenant": "ops", "roles": ["admin"]}]},
        postgres={"dsn": dsn},
        mcp={"servers": servers, "credentials_key": "${MCP_KEY}", "approval": "first_use", "pins_ttl_s": 0},
    )


@pytest.fixture(scope="module")
def dsn(postgres_dsn: str) -> str:
    return new_database(postgres_dsn, "mcpcreds")


@pytest.fixture(scope="module")
def oauth_server() -> Iterator[ServerProcess]:
    proc = ServerProcess(python_module("tests.support.oauth_server", "--redirect-uri", REDIRECT,
                                       "--client-secret", "oauth-client-secret")).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def gateway(start_gateway: GatewayFactory, sim: ServerProcess, dsn: str, oauth_server: ServerProcess) -> ServerProcess:
    return start_gateway(gateway_config(sim.url, dsn, oauth_server.url),
                         env={"MCP_KEY": base64.b64encode(SECRET).decode(), "OAUTH_SECRET": "oauth-client-secret"})


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def pool(dsn: str) -> AsyncIterator[McpPool]:
    pg = await Postgres.open(PostgresSettings(dsn=dsn))

    async def opened() -> Postgres:
        return pg

    yield McpPool(opened)
    await pg.aclose()


def call(gateway: ServerProcess, method: str, path: str, body: Any = None, key: str | None = KEY_A,
         raw: bytes | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    content = raw if raw is not None else orjson.dumps(body) if body is not None else None
    return httpx.request(method, f"{gateway.url}{path}", headers=headers, content=content, timeout=30)


def test_a_caller_stores_lists_and_deletes_its_own_token_and_never_reads_it(gateway: ServerProcess) -> None:
    put = call(gateway, "PUT", "/v1/mcp/credentials/gh", {"token": TOKEN_A})
    assert put.status_code == 200, put.text
    shown = put.json()
    assert shown["object"] == "mcp.credential" and shown["server"] == "gh"
    assert shown["fingerprint"].startswith("hmac-sha256:") and TOKEN_A not in put.text
    listed = call(gateway, "GET", "/v1/mcp/credentials")
    assert listed.json() == {"object": "list", "data": [shown]} and TOKEN_A not in listed.text
    assert call(gateway, "GET", "/v1/mcp/credentials", key=KEY_B).json() == {"object": "list", "data": []}
    assert call(gateway, "DELETE", "/v1/mcp/credentials/gh", key=KEY_B).status_code == 404
    assert call(gateway, "GET", "/v1/mcp/credentials/gh").status_code in (404, 405)  # no route reads a token
    deleted = call(gateway, "DELETE", "/v1/mcp/credentials/gh")
    assert deleted.json() == {"object": "mcp.credential.deleted", "server": "gh", "deleted": True}
    assert call(gateway, "GET", "/v1/mcp/credentials").json()["data"] == []
    assert TOKEN_A not in gateway.logs()


async def test_subject_a_token_is_never_subject_b_token(gateway: ServerProcess, pool: McpPool) -> None:
    assert call(gateway, "PUT", "/v1/mcp/credentials/gh", {"token": TOKEN_A}).status_code == 200
    store = PostgresCredentials(pool, Sealer(SECRET))
    alice, bob = subject_id("team", "a", {}), subject_id("team", "b", {})
    assert await store.token(alice, "gh") == TOKEN_A
    assert await store.token(bob, "gh") is None  # two keys of different subjects
    assert call(gateway, "PUT", "/v1/mcp/credentials/gh", {"token": TOKEN_B}, key=KEY_B).status_code == 200
    assert (await store.token(alice, "gh"), await store.token(bob, "gh")) == (TOKEN_A, TOKEN_B)
    assert await PostgresCredentials(pool, Sealer(os.urandom(32))).token(alice, "gh") is None
    fingerprints = {call(gateway, "GET", "/v1/mcp/credentials", key=k).json()["data"][0]["fingerprint"]
                    for k in (KEY_A, KEY_B)}
    assert len(fingerprints) == 2
    assert TOKEN_A not in gateway.logs() and TOKEN_B not in gateway.logs()


@pytest.mark.parametrize(("path", "body", "status", "code", "param"), [
    ("/v1/mcp/credentials/nope", {"token": "x"}, 404, "mcp_server_not_found", None),
    ("/v1/mcp/credentials/open", {"token": "x"}, 404, "mcp_server_not_found", None),
    ("/v1/mcp/credentials/gh", {}, 400, None, "token"),
    ("/v1/mcp/credentials/gh", {"token": ""}, 400, None, "token"),
    ("/v1/mcp/credentials/gh", {"token": "has\nnewline-secret"}, 400, None, "token"),
    ("/v1/mcp/credentials/gh", {"token": "x", "extra": 1}, 400, None, None),
    ("/v1/mcp/credentials/gh", ["token"], 400, None, None),
])
def test_bad_input_is_a_clear_error(gateway: ServerProcess, path: str, body: Any, status: int, code: str | None,
                                    param: str | None) -> None:
    reply = call(gateway, "PUT", path, body)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert (code is None or error["code"] == code) and (param is None or error["param"] == param)
    assert "newline-secret" not in reply.text


def test_credentials_need_a_key(gateway: ServerProcess) -> None:
    assert call(gateway, "GET", "/v1/mcp/credentials", key=None).status_code == 401
    assert call(gateway, "PUT", "/v1/mcp/credentials/gh", {"token": "x"}, key="sk-wrong").status_code == 401
    assert call(gateway, "PUT", "/v1/mcp/credentials/gh", raw=b"{not json").status_code == 400


def sign_in(gateway: ServerProcess, key: str) -> tuple[httpx.Response, dict[str, list[str]]]:
    """Start a sign-in as ``key``, let the authorization server grant it; the redirect's query."""
    started = call(gateway, "POST", "/v1/mcp/oauth/gho/authorize", key=key)
    assert started.status_code == 200, started.text
    granted = httpx.get(started.json()["authorization_url"], follow_redirects=False, timeout=30)
    assert granted.status_code == 302, granted.text
    location = granted.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return started, parse_qs(urlsplit(location).query)


async def test_oauth_sign_in_stores_the_subjects_token(gateway: ServerProcess, oauth_server: ServerProcess,
                                                       pool: McpPool) -> None:
    started, redirect = sign_in(gateway, KEY_A)
    asked = parse_qs(urlsplit(started.json()["authorization_url"]).query)
    assert asked["code_challenge_method"] == ["S256"] and asked["client_id"] == ["llmops-gateway"]
    assert asked["redirect_uri"] == [REDIRECT] and asked["resource"] == [OAUTH_URL] and asked["scope"] == ["repo"]
    assert "code_verifier" not in asked and started.json()["object"] == "mcp.oauth_authorization"
    query = {"code": redirect["code"][0], "state": redirect["state"][0]}
    done = httpx.get(f"{gateway.url}/v1/mcp/oauth/callback", params=query, timeout=30)  # the browser: no key
    assert done.status_code == 200, done.text
    assert done.json()["server"] == "gho" and done.json()["object"] == "mcp.credential"
    issued = httpx.get(f"{oauth_server.url}/issued", timeout=30).json()
    assert issued["resources"] == [OAUTH_URL]
    store = PostgresCredentials(pool, Sealer(SECRET))
    assert await store.token(subject_id("team", "a", {}), "gho") == issued["access"][-1]
    assert await store.token(subject_id("team", "b", {}), "gho") is None
    assert issued["access"][-1] not in done.text + gateway.logs() and issued["refresh"][-1] not in gateway.logs()
    again = httpx.get(f"{gateway.url}/v1/mcp/oauth/callback", params=query, timeout=30)
    assert again.status_code == 400 and again.json()["error"]["code"] == "invalid_oauth_state"


async def test_an_expired_oauth_token_is_refreshed(gateway: ServerProcess, oauth_server: ServerProcess,
                                                   pool: McpPool) -> None:
    _, redirect = sign_in(gateway, KEY_B)
    query = {"code": redirect["code"][0], "state": redirect["state"][0]}
    assert httpx.get(f"{gateway.url}/v1/mcp/oauth/callback", params=query, timeout=30).status_code == 200
    bob = subject_id("team", "b", {})
    async with pool.connection() as conn:
        await conn.execute("UPDATE llmops_mcp_credentials SET expires_at = 1 WHERE subject = %s AND server = 'gho'",
                           (bob,))
    store = PostgresCredentials(pool, Sealer(SECRET))
    assert await store.token(bob, "gho") is None  # expired, and this store cannot refresh
    settings = McpOAuth.model_validate({**oauth_block(oauth_server.url), "client_secret": "oauth-client-secret"})
    flows = OAuthFlows(pool, store, {"gho": OAuthServer(settings, OAUTH_URL)})
    before = httpx.get(f"{oauth_server.url}/issued", timeout=30).json()["access"]
    try:
        fresh = await store.token(bob, "gho")
        after = httpx.get(f"{oauth_server.url}/issued", timeout=30).json()["access"]
        assert fresh == after[-1] and fresh not in before
        assert await store.token(bob, "gho") == fresh  # stored, with its new expiry: not refreshed again
    finally:
        await flows.aclose()


def test_oauth_errors_are_clear(gateway: ServerProcess) -> None:
    _, redirect = sign_in(gateway, KEY_A)
    state = redirect["state"][0]
    wrong = httpx.get(f"{gateway.url}/v1/mcp/oauth/callback", params={"state": state, "code": "code-forged"},
                      timeout=30)
    assert wrong.status_code == 502 and wrong.json()["error"]["code"] == "oauth_token_failed"
    assert "invalid_grant" in wrong.json()["error"]["message"]
    _, redirect = sign_in(gateway, KEY_A)
    denied = httpx.get(f"{gateway.url}/v1/mcp/oauth/callback",
                       params={"state": redirect["state"][0], "error": "access_denied"}, timeout=30)
    assert denied.status_code == 400 and denied.json()["error"]["code"] == "oauth_denied"
    for params in ({"state": "never-issued", "code": "x"}, {"code": "x"}, {"state": "s"}):
        reply = httpx.get(f"{gateway.url}/v1/mcp/oauth/callback", params=params, timeout=30)
        assert reply.status_code == 400, reply.text
    assert call(gateway, "POST", "/v1/mcp/oauth/gh/authorize").status_code == 404  # gh takes tokens, not sign-ins
    assert call(gateway, "POST", "/v1/mcp/oauth/gho/authorize", key=None).status_code == 401


def tool(description: str) -> UpstreamTool:
    return UpstreamTool("open", "echo", description, {"type": "object", "properties": {"text": {"type": "string"}}})


async def test_a_changed_definition_is_held_until_approved_through_the_admin_api(gateway: ServerProcess,
                                                                             pool: McpPool) -> None:
    replica = PinnedDefinitions(pool, approval="first_use", scan="block", on_change=lambda server: "block",
                                ttl_s=0)
    original, changed = tool("Echoes the text."), tool("Echoes the text, and keeps a copy.")
    assert [t.name for t in (await replica.admit("open", [original])).offered] == ["echo"]
    held = await replica.admit("open", [changed])
    assert held.offered == () and "changed since approved" in held.held["echo"]
    listing = call(gateway, "GET", "/admin/mcp/servers/open/tools", key=ADMIN)
    assert listing.status_code == 200, listing.text
    (row,) = listing.json()["data"]
    assert (row["tool"], row["status"]) == ("echo", "changed")
    assert row["approved"]["hash"] == original.definition_hash() and row["approved"]["approved_by"] == "first_use"
    assert row["pending"]["hash"] == changed.definition_hash()
    assert row["pending"]["description"] == changed.description and row["pending"]["changes"] == ["description"]
    assert call(gateway, "POST", "/admin/mcp/servers/open/tools/echo/approve", key=KEY_A).status_code == 403
    stale = call(gateway, "POST", "/admin/mcp/servers/open/tools/echo/approve", {"hash": original.definition_hash()},
                 key=ADMIN)
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "definition_changed"
    assert (await replica.admit("open", [changed])).offered == ()
    approved = call(gateway, "POST", "/admin/mcp/servers/open/tools/echo/approve",
                    {"hash": changed.definition_hash()}, key=ADMIN)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved" and approved.json()["approved"]["approved_by"] == "admin"
    assert [t.description for t in (await replica.admit("open", [changed])).offered] == [changed.description]
    revoked = call(gateway, "POST", "/admin/mcp/servers/open/tools/echo/revoke", key=ADMIN)
    assert revoked.json()["status"] == "revoked"
    assert "revoked" in (await replica.admit("open", [changed])).held["echo"]
    assert call(gateway, "POST", "/admin/mcp/servers/open/tools/echo/approve", key=ADMIN).status_code == 200
    assert (await replica.admit("open", [changed])).held == {}


def test_the_admin_api_answers_404_for_unknown_servers_and_tools(gateway: ServerProcess) -> None:
    for method, path in (("GET", "/admin/mcp/servers/nope/tools"),
                         ("POST", "/admin/mcp/servers/nope/tools/echo/approve"),
                         ("POST", "/admin/mcp/servers/gh/tools/never-seen/approve"),
                         ("POST", "/admin/mcp/servers/gh/tools/never-seen/revoke")):
        reply = call(gateway, method, path, key=ADMIN)
        assert reply.status_code == 404, (path, reply.text)
    bad = call(gateway, "POST", "/admin/mcp/servers/open/tools/echo/approve", {"hash": "xyz"}, key=ADMIN)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "hash"


def test_servers_registered_at_runtime_take_tokens_and_pin_reviews(gateway: ServerProcess) -> None:
    """Through the admin API, not config: callers store their tokens for it, admins review its definitions."""
    made = call(gateway, "POST", "/admin/mcp/servers", {"name": "rt", "url": "http://127.0.0.1:9/mcp",
                                                       "credential": "per_subject"}, key=ADMIN)
    assert made.status_code == 201, made.text
    try:
        put = call(gateway, "PUT", "/v1/mcp/credentials/rt", {"token": TOKEN_B}, key=KEY_B)
        assert put.status_code == 200 and put.json()["server"] == "rt", put.text
        assert call(gateway, "DELETE", "/v1/mcp/credentials/rt", key=KEY_B).status_code == 200
        assert call(gateway, "GET", "/admin/mcp/servers/rt/tools", key=ADMIN).status_code == 200
        assert call(gateway, "PUT", "/v1/mcp/credentials/open", {"token": TOKEN_B}, key=KEY_B).status_code == 404
    finally:
        assert call(gateway, "DELETE", "/admin/mcp/servers/rt", key=ADMIN).status_code == 200
    assert call(gateway, "PUT", "/v1/mcp/credentials/rt", {"token": TOKEN_B}, key=KEY_B).status_code == 404


def test_the_routes_are_described(gateway: ServerProcess) -> None:
    paths = httpx.get(f"{gateway.url}/openapi.json", timeout=30).json()["paths"]
    assert set(paths["/v1/mcp/credentials/{server}"]) == {"put", "delete"}
    assert "get" in paths["/v1/mcp/credentials"]
    assert "post" in paths["/admin/mcp/servers/{name}/tools/{tool}/approve"]


@pytest.mark.parametrize(("key", "said"), [("not-base64!", "not base64"),
                                           (base64.b64encode(b"sixteen-byte-key").decode(), "got 16")])
def test_a_bad_key_stops_startup_with_one_line(tmp_path: Path, key: str, said: str) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({**sim_config("http://127.0.0.1:9"), "mcp": {"credentials_key": "${MCP_KEY}"}}))
    done = subprocess.run(python_module("gateway.cli", "serve", "--config", str(path), "--port", "0"), cwd=ROOT,
                          capture_output=True, text=True, timeout=60, env={**os.environ, "MCP_KEY": key})
    assert done.returncode == 2, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if "credentials_key" in line]
    assert line.strip().startswith("mcp.credentials_key: ") and said in line
    assert key not in done.stderr and "Traceback" not in done.stderr
