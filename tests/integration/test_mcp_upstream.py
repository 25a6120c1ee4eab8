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
from tests.support.responses_events import sse_events, types_of, validate_events
from tests.support.services import new_database

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


def upstream_config(sim_url: str, everything_url: str, recorder_url: str, policy_data: Path,
                    dsn: str) -> dict[str, Any]:
    keys = [{"key": AGENT, "key_id": "up-agent", "tenant": "research", "roles": ["agent"]},
            {"key": TRIAL, "key_id": "up-trial", "tenant": "research", "roles": ["trial"]},
            {"key": ADMIN, "key_id": "up-admin", "tenant": "ops", "roles": ["admin"]}]
    policy_data.write_text(json.dumps({"policy": {"mcp": {"servers": {
        "everything": {"deny_tools": ["get-env"]}, "rec": {}, "ev2": {}}}}}))
    servers = [{"name": "everything", "url": f"{everything_url}/mcp"},
               {"name": "rec", "url": f"{recorder_url}/mcp", "credential": "static", "secret": "REC_TOKEN"}]
    return sim_config(sim_url, "sim-chat", chain=["authn", "tools"], auth={"static_keys": keys},
                      tools={"secrets": {"REC_TOKEN": REC_TOKEN}}, mcp={"servers": servers},
                      policy={"paths": [str(ROOT / "config" / "policies"), str(policy_data)], "reload_interval_s": 0},
                      postgres={"dsn": dsn})


@pytest.fixture(scope="module")
def gateway(sim: ServerProcess, start_gateway: GatewayFactory, everything: ServerProcess, recorder: ServerProcess,
            tmp_path_factory: pytest.TempPathFactory, postgres_dsn: str) -> ServerProcess:
    data = tmp_path_factory.mktemp("mcp-policy") / "mcp.json"
    return start_gateway(upstream_config(sim.url, everything.url, recorder.url, data,
                                         new_database(postgres_dsn, "mcpup")))


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
        assert http.delete("/admin/mcp/servers/everything").status_code == 409  # config: not removable here
        made = http.post("/admin/mcp/servers", json={"name": "ev2", "url": f"{everything.url}/mcp"})
        assert made.status_code == 201 and made.json()["source"] == "runtime"
        assert http.get("/admin/mcp/servers/ev2").json()["url"] == f"{everything.url}/mcp"
        body = client_for(gateway).chat.completions.with_raw_response.create(
            model="sim-chat", messages=[{"role": "user", "content": 'ev2__echo "registered"'}],
            tools=[{"type": "llmops_tool", "name": "ev2__echo"}]).http_response.json()  # type: ignore[list-item]
        assert calls_of(body)[0]["status"] == "ok" and "Echo: registered" in body["choices"][0]["message"]["content"]
        assert http.delete("/admin/mcp/servers/ev2").json()["deleted"] is True
        assert http.get("/admin/mcp/servers/ev2").status_code == 404
    with pytest.raises(openai.BadRequestError):
        client_for(gateway).chat.completions.create(model="sim-chat", messages=[{"role": "user", "content": "x"}],
                                                    tools=[{"type": "llmops_tool", "name": "ev2__echo"}])  # type: ignore[list-item]


# --- Responses: the {"type": "mcp"} tool, its items and events ------------------------------------------


def mcp_tool(approval: Any = "never", **more: Any) -> Any:
    return {"type": "mcp", "server_label": "everything", "allowed_tools": ["echo"], "require_approval": approval,
            **more}


def test_responses_lists_and_calls_an_upstream_tool(gateway: ServerProcess, everything: ServerProcess) -> None:
    raw = client_for(gateway).responses.with_raw_response.create(
        model="sim-chat", input='Use everything__echo to say "from responses"',
        tools=[mcp_tool(server_url=f"{everything.url}/mcp")])
    response, body = raw.parse(), json.loads(raw.http_response.text)
    validate(body, "Response")
    assert [item.type for item in response.output] == ["mcp_list_tools", "mcp_call", "message"]
    listed, call = body["output"][0], body["output"][1]
    assert listed["server_label"] == "everything" and [t["name"] for t in listed["tools"]] == ["echo"]
    assert listed["tools"][0]["input_schema"]["properties"]["message"]["type"] == "string"
    assert call["name"] == "echo" and call["status"] == "completed" and call["error"] is None
    assert call["output"] == "Echo: from responses" and json.loads(call["arguments"]) == {"message": "from responses"}
    assert "Echo: from responses" in response.output_text
    assert body["tools"][0]["type"] == "mcp"  # echoed as sent


def test_responses_stream_has_the_mcp_events(gateway: ServerProcess) -> None:
    with httpx.Client(timeout=60) as http:
        reply = http.post(f"{gateway.url}/v1/responses", headers={"authorization": f"Bearer {AGENT}"}, json={
            "model": "sim-chat", "input": 'everything__echo "streamed"', "tools": [mcp_tool()], "stream": True})
    events = sse_events(reply.text)
    validate_events(events)
    kinds = types_of(events)
    for kind in ("response.mcp_list_tools.in_progress", "response.mcp_list_tools.completed",
                 "response.mcp_call.in_progress", "response.mcp_call_arguments.done", "response.mcp_call.completed"):
        assert kind in kinds, kinds
    final = events[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["mcp_list_tools", "mcp_call", "message"]
    assert final["output"][1]["output"] == "Echo: streamed"


def test_approval_is_asked_then_the_approved_call_runs(gateway: ServerProcess) -> None:
    client = client_for(gateway)
    first = client.responses.create(model="sim-chat", input='Use everything__echo to say "approve me"',
                                    tools=[mcp_tool("always")])
    validate(first.model_dump(mode="json", exclude_unset=True), "Response")
    assert [item.type for item in first.output] == ["mcp_list_tools", "mcp_approval_request"]
    request = first.output[1]
    assert request.type == "mcp_approval_request" and request.name == "echo" and request.server_label == "everything"
    assert json.loads(request.arguments) == {"message": "approve me"}
    second = client.responses.create(
        model="sim-chat", previous_response_id=first.id, tools=[mcp_tool("always")],
        input=[{"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}])
    types = [item.type for item in second.output]
    assert types == ["mcp_list_tools", "mcp_call", "message"], types
    call = second.output[1]
    assert call.type == "mcp_call" and call.approval_request_id == request.id and call.output == "Echo: approve me"
    assert "Echo: approve me" in second.output_text
    extra: Any = second.to_dict()
    approved, *steps = extra["llmops"]["trace"]
    assert approved["step"] == 0 and approved["finish_reason"] == "approved"
    (traced,) = approved["calls"]
    assert traced["name"] == "everything__echo" and traced["status"] == "ok" and traced["decision_id"]
    assert [s["step"] for s in steps] == list(range(1, len(steps) + 1))


def test_a_streamed_approval_request(gateway: ServerProcess) -> None:
    with httpx.Client(timeout=60) as http:
        reply = http.post(f"{gateway.url}/v1/responses", headers={"authorization": f"Bearer {AGENT}"}, json={
            "model": "sim-chat", "input": 'everything__echo "ask first"', "tools": [mcp_tool("always")],
            "stream": True})
    events = sse_events(reply.text)
    validate_events(events)
    assert not any(e["type"].startswith("response.function_call_arguments") for e in events)
    added = [e["item"]["type"] for e in events if e["type"] == "response.output_item.added"]
    assert added == ["mcp_list_tools", "mcp_approval_request"]
    final = events[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["mcp_list_tools", "mcp_approval_request"]


def test_a_refused_approval_never_runs_the_call(gateway: ServerProcess) -> None:
    client = client_for(gateway)
    first = client.responses.create(model="sim-chat", input='everything__echo "never run"', tools=[mcp_tool()
                                    | {"require_approval": {"always": {"tool_names": ["echo"]}}}])
    request = first.output[-1]
    assert request.type == "mcp_approval_request"
    second = client.responses.create(
        model="sim-chat", previous_response_id=first.id, tools=[mcp_tool("always")],
        input=[{"type": "mcp_approval_response", "approval_request_id": request.id, "approve": False}])
    assert "mcp_call" not in [item.type for item in second.output]
    assert "Echo: never run" not in second.output_text


def test_responses_refuses_unregistered_urls_and_forwarded_headers(gateway: ServerProcess) -> None:
    client = client_for(gateway)
    with pytest.raises(openai.BadRequestError) as url:
        client.responses.create(model="sim-chat", input="hi",
                                tools=[mcp_tool(server_url="http://127.0.0.1:1/mcp")])
    assert url.value.body["param"] == "tools[0].server_url"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as headers:
        client.responses.create(model="sim-chat", input="hi", tools=[mcp_tool(headers={"authorization": "x"})])
    assert headers.value.body["param"] == "tools[0].headers"  # type: ignore[index]
