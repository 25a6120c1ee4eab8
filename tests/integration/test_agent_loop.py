"""Done-when for issue 6: the real ``openai`` client → a real gateway → the simulator as the model, with
server-side tools run in sandboxes on real ``llmops node`` processes (bwrap; docker when available).

Policy: the real embedded Rego engine (regorus) with the default policy in ``config/policies``: key
``sk-agent`` (role ``agent``) is unconstrained; key ``sk-trial`` (role ``trial``) may use only the
calculator, so its ``python`` calls are denied and never run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory
from tests.support.configs import sim_config
from tests.support.processes import ServerProcess, python_module, unavailable

pytestmark = pytest.mark.integration

ADMIN_KEY = "sk-node-admin"
ADMIN: dict[str, Any] = {"key": ADMIN_KEY, "key_id": "node-admin", "tenant": "ops", "roles": ["admin"]}
QUESTION = 'What is the SHA-256 of "hello llmops"?'
DIGEST = hashlib.sha256(b"hello llmops").hexdigest()
PYTHON: Any = {"type": "llmops_tool", "name": "python"}
WEATHER: Any = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Weather for a city",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
}


def gateway_config(sim_url: str, driver: str | None) -> dict[str, Any]:
    keys = [{"key": "sk-agent", "key_id": "agent", "tenant": "research", "roles": ["agent"]},
            {"key": "sk-trial", "key_id": "trial", "tenant": "research", "roles": ["trial"]}, ADMIN]
    tools: dict[str, Any] = {"enrollment": {"enabled": True}, "scheduler": {"node_ttl_s": 5}}
    if driver is not None:
        tools["options"] = {"python": {"driver": driver}}
    return sim_config(sim_url, "sim-chat", chain=["authn", "tools"], auth={"static_keys": keys}, tools=tools)


def admin(gateway: ServerProcess, method: str, path: str, body: Any = None) -> Any:
    response = httpx.request(method, gateway.url + path, json=body, headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code < 300, response.text
    return response.json()


def join_token(gateway: ServerProcess, node_id: str | None, labels: dict[str, str] | None = None) -> str:
    """A single-use join token from the admin API (the gateway's config must list ``ADMIN``)."""
    return str(admin(gateway, "POST", "/admin/nodes/tokens", {"node_id": node_id, "labels": labels or {}})["token"])


def start_node(gateway: ServerProcess, drivers: str, node_id: str, *, labels: dict[str, str] | None = None,
               state: Path | None = None) -> ServerProcess:
    """Enroll a new node (its token in the environment, never in argv) and run it over TLS."""
    token = join_token(gateway, node_id, labels if labels is not None else {"region": "eu", "zone": "a"})
    state = state or Path(tempfile.mkdtemp(prefix=f"{node_id}-")) / "state"
    argv = python_module("gateway.cli", "node", "--port", "0", "--control-plane", gateway.url,
                         "--state-dir", str(state), "--labels", "region=eu,zone=a", "--drivers", drivers,
                         "--node-id", node_id, "--heartbeat-seconds", "0.5", "--pool-size", "1")
    return ServerProcess(argv, env={"LLMOPS_JOIN_TOKEN": token}).start(timeout_s=60)


def wait_for_tools(client: openai.OpenAI) -> None:
    """Until a heartbeat has registered the node, tool calls get 503 no_tool_node."""
    deadline = time.monotonic() + 20
    while True:
        try:
            client.chat.completions.create(model="sim-chat", messages=[{"role": "user", "content": QUESTION}],
                                           tools=[PYTHON])
            return
        except openai.APIStatusError as exc:
            if exc.status_code != 503 or time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def node_drivers(node: ServerProcess) -> set[str]:
    """The drivers that came up, as the node printed them before ``listening on``."""
    for line in node.output:
        if " drivers: " in line:
            return {d for d in line.split(" drivers: ", 1)[1].strip().split(",") if d}
    return set()


@pytest.fixture(scope="module", params=["bwrap", "docker"])
def agent(request: pytest.FixtureRequest, sim: ServerProcess, start_gateway: GatewayFactory) -> Iterator[str]:
    driver = str(request.param)
    gateway = start_gateway(gateway_config(sim.url, driver))
    node = start_node(gateway, driver, f"node-{driver}")
    try:
        if driver not in node_drivers(node):
            unavailable(f"the {driver} driver")
        wait_for_tools(openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-agent", max_retries=0))
        yield gateway.url
    finally:
        node.stop()


def client_for(url: str, key: str = "sk-agent") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)


def ask(url: str, key: str = "sk-agent", **extra: Any) -> Any:
    client = client_for(url, key)
    return client.chat.completions.with_raw_response.create(
        model="sim-chat", messages=[{"role": "user", "content": QUESTION}], tools=[PYTHON], **extra)


def test_sha256_is_computed_in_a_sandbox_on_the_node(agent: str, request: pytest.FixtureRequest) -> None:
    raw = ask(agent)
    completion = raw.parse()
    assert DIGEST in (completion.choices[0].message.content or "")
    assert raw.headers["x-llmops-tool-steps"] == "2"
    trace = json.loads(raw.http_response.text)["llmops"]["trace"]
    call = trace[0]["calls"][0]
    driver = request.node.callspec.params["agent"]
    assert call["name"] == "python" and call["status"] == "ok" and call["exit_code"] == 0
    assert call["node"] == f"node-{driver}" and call["driver"] == driver
    assert call["duration_ms"] > 0 and trace[0]["model_ms"] > 0
    assert trace[1]["finish_reason"] == "stop" and not trace[1]["calls"]


def test_stream_variant(agent: str) -> None:
    stream = client_for(agent).chat.completions.create(
        model="sim-chat", messages=[{"role": "user", "content": QUESTION}], tools=[PYTHON],
        stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert DIGEST in text
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    last = [c for c in chunks if c.choices][-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.model_extra and last.model_extra["llmops"]["trace"][0]["calls"][0]["status"] == "ok"


def test_denied_tool_is_fed_back_and_never_run(agent: str) -> None:
    raw = ask(agent, key="sk-trial")
    content = raw.parse().choices[0].message.content or ""
    assert "denied by policy" in content and DIGEST not in content
    call = json.loads(raw.http_response.text)["llmops"]["trace"][0]["calls"][0]
    assert call["status"] == "denied" and "node" not in call and "driver" not in call
    assert "not allowed" in call["reason"] and call["decision_id"]


def test_client_side_tool_passes_through(agent: str) -> None:
    raw = client_for(agent).chat.completions.with_raw_response.create(
        model="sim-chat", messages=[{"role": "user", "content": 'Use get_weather for "Paris".'}],
        tools=[WEATHER])
    completion: Any = raw.parse()
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.choices[0].message.tool_calls[0].function.name == "get_weather"
    assert "llmops" not in json.loads(raw.http_response.text)
    assert "x-llmops-tool-steps" not in raw.headers


def test_mixed_request_returns_the_client_tool_call(agent: str) -> None:
    raw = client_for(agent).chat.completions.with_raw_response.create(
        model="sim-chat", messages=[{"role": "user", "content": 'Use get_weather for "Paris".'}],
        tools=[PYTHON, WEATHER])
    message: Any = raw.parse().choices[0].message
    assert [c.function.name for c in message.tool_calls or []] == ["get_weather"]
    trace = json.loads(raw.http_response.text)["llmops"]["trace"]
    assert trace[0]["calls"][0]["status"] == "client"


@pytest.fixture(scope="module")
def two_nodes(sim: ServerProcess, start_gateway: GatewayFactory) -> Iterator[tuple[ServerProcess, list[ServerProcess]]]:
    gateway = start_gateway(gateway_config(sim.url, "bwrap"))
    nodes = [start_node(gateway, "bwrap", f"node-{i}") for i in (1, 2)]
    try:
        wait_for_tools(client_for(gateway.url))
        time.sleep(1.0)  # both nodes have sent a heartbeat
        yield gateway, nodes
    finally:
        for node in nodes:
            node.stop()


def busy_node(gateway: ServerProcess, nodes: list[ServerProcess]) -> ServerProcess | None:
    """A node whose last heartbeat reported a job running (the admin API's node list)."""
    busy = {n["url"] for n in admin(gateway, "GET", "/admin/nodes")["data"] if n["live"] and n["free_slots"] < 2}
    return next((node for node in nodes if node.url in busy), None)


def test_node_killed_mid_job_is_retried_on_another_node(
    two_nodes: tuple[ServerProcess, list[ServerProcess]]
) -> None:
    gateway, nodes = two_nodes
    url = gateway.url
    slow: Any = {"type": "function", "function": {"name": "python"}}
    choice: Any = {"type": "function", "function": {"name": "python"}}
    client = client_for(url)
    prompt = 'Run python: "import time; time.sleep(2); print(6 * 7)"'

    def call() -> Any:
        return client.chat.completions.with_raw_response.create(
            model="sim-chat", messages=[{"role": "user", "content": prompt}], tools=[slow],
            tool_choice=choice, extra_body={"llmops": {"max_steps": 2}})

    async def run() -> Any:
        task = asyncio.create_task(asyncio.to_thread(call))
        victim = None
        for _ in range(40):
            await asyncio.sleep(0.1)
            victim = await asyncio.to_thread(busy_node, gateway, nodes)
            if victim is not None:
                break
        assert victim is not None, "the job never reached a node"
        victim.signal(signal.SIGKILL)
        return await task, victim

    raw, victim = asyncio.run(run())
    call_trace = json.loads(raw.http_response.text)["llmops"]["trace"][0]["calls"][0]
    assert call_trace["status"] == "ok" and call_trace["attempts"] == 2
    assert call_trace["node"] != victim.argv[victim.argv.index("--node-id") + 1]
    assert "42" in (raw.parse().choices[0].message.content or "")
