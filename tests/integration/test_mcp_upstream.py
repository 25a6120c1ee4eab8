"""Upstream MCP servers over streamable HTTP, offered to models and MCP clients: a real gateway with the
simulator as its model; ``@modelcontextprotocol/server-everything`` (npm, run with node) and a recording
``mcp`` SDK server (``tests/support/recording_mcp.py``) as its upstreams; the ``openai`` SDK and the ``mcp``
SDK as clients. No tool node: upstream tools run on their servers, not in sandboxes.

Policy: the default policy (``config/policies``) plus data allowing the server ``everything`` except its
``get-env`` tool (which would show the server's environment) and the server ``rec``. ``sk-up-trial``
(role ``trial``) may only use ``calculator``: no upstream tool at all.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import TextContent

from tests.conftest import GatewayFactory
from tests.support.configs import sim_config
from tests.support.mcp_servers import EVERYTHING, start_everything, start_recorder
from tests.support.npm import npm_package
from tests.support.openapi import validate
from tests.support.processes import ROOT, ServerProcess

pytestmark = pytest.mark.integration

AGENT, TRIAL, ADMIN = "sk-up-agent", "sk-up-trial", "sk-up-admin"
REC_TOKEN = "rec-static-token-5c1e9a7b"
ECHO: Any = {"type": "llmops_tool", "name": "everything__echo"}
GET_ENV: Any = {"type": "llmops_tool", "name": "everything__get-env"}


@pytest.fixture(scope="module")
def everything(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_everything(npm_package(tmp_path_factory, EVERYTHING))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def recorder() -> Iterator[ServerProcess]:
    server = start_recorder()
    yield server
    server.stop()


def upstream_config(sim_url: str, everything_url: str, recorder_url: str, policy_data: Path) -> dict[str, Any]:
    keys = [{"key": AGENT, "key_id": "up-agent", "tenant": "research", "roles": ["agent"]},
            {"key": TRIAL, "key_id": "up-trial", "tenant": "research", "roles": ["trial"]},
            {"key": ADMIN, "key_id": "up-admin", "tenant": "ops", "roles": ["admin"]}]
    policy_data.write_text(json.dumps({"policy": {"mcp": {"servers": {
        "everything": {"deny_tools": ["get-env"]}, "rec": {}}}}}))
    servers = [{"name": "everything", "url": f"{everything_url}/mcp"},
               {"name": "rec", "url": f"{recorder_url}/mcp", "credential": "static", "secret": "REC_TOKEN"}]
    return sim_config(sim_url, "sim-chat", chain=["authn", "tools"], auth={"static_keys": keys},
                      tools={"secrets": {"REC_TOKEN": REC_TOKEN}}, mcp={"servers": servers},
                      policy={"paths": [str(ROOT / "config" / "policies"), str(policy_data)], "reload_interval_s": 0})


@pytest.fixture(scope="module")
def gateway(sim: ServerProcess, start_gateway: GatewayFactory, everything: ServerProcess, recorder: ServerProcess,
            tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    data = tmp_path_factory.mktemp("mcp-policy") / "mcp.json"
    return start_gateway(upstream_config(sim.url, everything.url, recorder.url, data))


def client_for(gateway: ServerProcess, key: str = AGENT) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0, timeout=60)


@asynccontextmanager
async def mcp_client(url: str, key: str) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=httpx2.Timeout(30, read=60))
    async with http, Client(streamable_http_client(f"{url}/mcp", http_client=http), mode="legacy") as client:
        yield client


def calls_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for step in body["llmops"]["trace"] for c in step.get("calls", [])]


# --- Chat Completions: the agent loop calls the upstream tool ------------------------------------------


def test_chat_model_calls_an_upstream_tool_through_the_loop(gateway: ServerProcess) -> None:
    raw = client_for(gateway).chat.completions.with_raw_response.create(
        model="sim-chat", messages=[{"role": "user", "content": 'Use everything__echo to say "hello upstream"'}],
        tools=[ECHO])
    body = json.loads(raw.http_response.text)
    validate(body, "CreateChatCompletionResponse")
    (call,) = calls_of(body)
    assert call["name"] == "everything__echo" and call["status"] == "ok", call
    assert call["decision_id"] and "node" not in call
    assert raw.headers["x-llmops-tool-steps"] == "2"
    assert "Echo: hello upstream" in (body["choices"][0]["message"]["content"] or "")


def test_chat_offers_a_whole_server_with_the_mcp_tool_shape(gateway: ServerProcess) -> None:
    server: Any = {"type": "mcp", "server_label": "everything", "allowed_tools": ["echo", "get-sum"]}
    body = client_for(gateway).chat.completions.with_raw_response.create(
        model="sim-chat", messages=[{"role": "user", "content": 'everything__echo "whole server"'}],
        tools=[server]).http_response.json()
    (call,) = calls_of(body)
    assert call["name"] == "everything__echo" and call["status"] == "ok"
    assert "Echo: whole server" in body["choices"][0]["message"]["content"]


def test_a_forbidden_upstream_tool_is_denied_in_the_loop(gateway: ServerProcess) -> None:
    body = client_for(gateway).chat.completions.with_raw_response.create(
        model="sim-chat", messages=[{"role": "user", "content": "Call everything__get-env please"}],
        tools=[GET_ENV]).http_response.json()
    (call,) = calls_of(body)
    assert call["status"] == "denied" and 'tool "get-env" of MCP server "everything" is not allowed' in call["reason"]
    trial = client_for(gateway, TRIAL).chat.completions.with_raw_response.create(
        model="sim-chat", messages=[{"role": "user", "content": 'everything__echo "hi"'}],
        tools=[ECHO]).http_response.json()
    (denied,) = calls_of(trial)
    assert denied["status"] == "denied" and "not allowed for roles" in denied["reason"]


def test_unknown_servers_and_urls_are_400s(gateway: ServerProcess) -> None:
    client = client_for(gateway)
    messages: Any = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.BadRequestError) as unknown:
        client.chat.completions.create(model="sim-chat", messages=messages,
                                       tools=[{"type": "mcp", "server_label": "nowhere"}])  # type: ignore[list-item]
    assert unknown.value.body["param"] == "tools[0].server_label"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as url:
        client.chat.completions.create(model="sim-chat", messages=messages, tools=[
            {"type": "mcp", "server_label": "x", "server_url": "http://169.254.169.254/mcp"}])  # type: ignore[list-item]
    assert url.value.body["param"] == "tools[0].server_url"  # type: ignore[index]


# --- /mcp: the gateway as one MCP server lists and calls upstream tools --------------------------------


async def test_mcp_clients_see_and_call_upstream_tools_the_policy_allows(gateway: ServerProcess) -> None:
    async with mcp_client(gateway.url, AGENT) as agent:
        names = {tool.name for tool in (await agent.list_tools()).tools}
        assert {"everything__echo", "everything__get-sum", "rec__whoami"} <= names
        assert "everything__get-env" not in names
        result = await agent.call_tool("everything__echo", {"message": "via /mcp"})
        denied = await agent.call_tool("everything__get-env", {})
    assert not result.is_error and _text(result.content) == "Echo: via /mcp"
    assert denied.is_error and 'tool "get-env" of MCP server "everything" is not allowed' in _text(denied.content)
    async with mcp_client(gateway.url, TRIAL) as trial:
        assert not any("__" in tool.name for tool in (await trial.list_tools()).tools)
        refused = await trial.call_tool("everything__echo", {"message": "no"})
    assert refused.is_error and "denied by policy" in _text(refused.content)


async def test_the_injected_token_reaches_the_upstream_and_never_the_caller(gateway: ServerProcess,
                                                                           recorder: ServerProcess) -> None:
    async with mcp_client(gateway.url, AGENT) as agent:
        result = await agent.call_tool("rec__whoami", {})
    assert _text(result.content) == "Bearer [REDACTED:REC_TOKEN]"  # the upstream saw it; the caller does not
    seen = [line.split("seen: ", 1)[1].strip() for line in recorder.output if line.startswith("seen: ")]
    assert f"Bearer {REC_TOKEN}" in seen
    assert not any(AGENT in s for s in seen)  # the client's own key never goes upstream


def _text(content: list[Any]) -> str:
    (block,) = content
    assert isinstance(block, TextContent)
    return block.text


def test_admin_api_registers_lists_and_removes_servers(gateway: ServerProcess, everything: ServerProcess) -> None:
    admin = {"authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=gateway.url, headers=admin, timeout=30) as http:
        listed = http.get("/admin/mcp/servers").json()
        assert {s["name"] for s in listed["data"]} >= {"everything", "rec"}
        bad = http.post("/admin/mcp/servers", json={"name": "x"})
        assert bad.status_code == 400 and bad.json()["error"]["param"]
        taken = http.post("/admin/mcp/servers", json={"name": "everything", "url": f"{everything.url}/mcp"})
        assert taken.status_code == 409
        assert http.get("/admin/mcp/servers/nope").status_code == 404
        assert http.delete("/admin/mcp/servers/nope").status_code == 404
        assert httpx.get(f"{gateway.url}/admin/mcp/servers", headers={"authorization": f"Bearer {AGENT}"}
                         ).status_code == 403
