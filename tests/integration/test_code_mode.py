"""Done-when for issue 13's code mode: the real ``openai`` client → a real gateway → the simulator as the
model, which calls ``code``; the script runs in bubblewrap on a real ``llmops node`` and calls the other
tools through the stub ``llmops_tools``. Each call goes back to the gateway over the node's signed
exchange and is decided by the real embedded Rego policy: role ``coder`` may use ``code`` and ``python``
only, so the script's ``python`` call runs (on the node, in its own sandbox) and its ``shell`` call is
denied, traced with its decision id, and never runs. The same through ``/mcp`` ``tools/call``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import TextContent

from tests.conftest import GatewayFactory
from tests.integration.test_agent_loop import ADMIN, node_drivers, start_node, wait_for_tools
from tests.support.configs import sim_config
from tests.support.processes import ROOT, ServerProcess, unavailable

pytestmark = pytest.mark.integration

CODER = "sk-coder"
CODE: Any = {"type": "llmops_tool", "name": "code"}
PYTHON: Any = {"type": "llmops_tool", "name": "python"}
SHELL: Any = {"type": "llmops_tool", "name": "shell"}
# No double quotes: the simulator takes the script from the prompt's quoted text.
SCRIPT = """from llmops_tools import ToolError, call
big = call('python', {'code': 'print(6 * 7); print(2 ** 10000)'}).split()
print('PY', big[0], 'BIG', len(big[1]))
try:
    print('RAN', call('shell', {'script': 'echo SHELL-$((40 + 2))'}))
except ToolError as exc:
    print('SHELL', exc.status, exc)
"""
BIG = str(2**10000)
DENIAL = 'error: the tool call was denied by policy and not run: tool "shell" is not allowed'


def code_config(sim_url: str, policy_data: Path) -> dict[str, Any]:
    keys = [{"key": CODER, "key_id": "coder", "tenant": "research", "roles": ["coder"]}, ADMIN]
    tools = {"builtin": ["python", "shell", "code"], "enrollment": {"enabled": True}, "scheduler": {"node_ttl_s": 5}}
    policy = {"paths": [str(ROOT / "config" / "policies"), str(policy_data)], "reload_interval_s": 0}
    return sim_config(sim_url, "sim-chat", chain=["authn", "tools"], auth={"static_keys": keys}, tools=tools,
                      policy=policy)


@pytest.fixture(scope="module")
def gateway(sim: ServerProcess, start_gateway: GatewayFactory,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("code-policy") / "coder.json"
    data.write_text(json.dumps({"policy": {"roles": {"coder": {"tools": ["code", "python"]}}}}))
    gateway = start_gateway(code_config(sim.url, data))
    node = start_node(gateway, "bwrap", "code-node")
    try:
        if "bwrap" not in node_drivers(node):
            unavailable("the bwrap driver")
        wait_for_tools(openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=CODER, max_retries=0))
        yield gateway
    finally:
        node.stop()


def check_inner(inner: list[dict[str, Any]]) -> None:
    python, shell = inner
    assert python["name"] == "python" and python["status"] == "ok" and python["via"] == "code"
    assert python["node"] == "code-node" and python["driver"] == "bwrap" and python["decision_id"]
    assert shell["name"] == "shell" and shell["status"] == "denied" and shell["via"] == "code"
    assert shell["decision_id"] and "not allowed" in shell["reason"]
    assert "node" not in shell and "driver" not in shell and "exit_code" not in shell


def test_a_scripts_calls_are_authorized_like_the_models_and_traced(gateway: ServerProcess) -> None:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=CODER, max_retries=0, timeout=60)
    raw = client.chat.completions.with_raw_response.create(
        model="sim-chat", messages=[{"role": "user", "content": f'Run code "{SCRIPT}"'}],
        tools=[CODE, PYTHON, SHELL], tool_choice={"type": "function", "function": {"name": "code"}},
        extra_body={"llmops": {"max_steps": 2}})
    content = raw.parse().choices[0].message.content or ""
    assert f"PY 42 BIG {len(BIG)}" in content  # the big intermediate value stayed in the script: only its length
    assert BIG[:40] not in content
    assert f"SHELL denied {DENIAL}" in content
    assert "SHELL-42" not in content  # the forbidden tool never ran
    (code,) = json.loads(raw.http_response.text)["llmops"]["trace"][0]["calls"]
    assert code["name"] == "code" and code["status"] == "ok" and code["exit_code"] == 0
    assert code["node"] == "code-node" and code["driver"] == "bwrap"
    check_inner(code["inner"])


def test_the_same_on_the_responses_api(gateway: ServerProcess) -> None:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=CODER, max_retries=0, timeout=60)
    tools: Any = [{"type": "function", "name": name} for name in ("code", "python", "shell")]
    raw = client.responses.with_raw_response.create(
        model="sim-chat", input=f'Run code "{SCRIPT}"', tools=tools,
        tool_choice={"type": "function", "name": "code"}, extra_body={"llmops": {"max_steps": 2}})
    response = raw.parse()
    assert f"PY 42 BIG {len(BIG)}" in response.output_text and "SHELL-42" not in response.output_text
    (output,) = [item for item in response.output if item.type == "function_call_output"]
    assert f"SHELL denied {DENIAL}" in str(output.output)
    (code,) = json.loads(raw.http_response.text)["llmops"]["trace"][0]["calls"]
    assert code["name"] == "code" and code["status"] == "ok"
    check_inner(code["inner"])


@asynccontextmanager
async def connected(url: str, key: str) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=httpx2.Timeout(30, read=120))
    async with http, Client(streamable_http_client(f"{url}/mcp", http_client=http), mode="legacy") as client:
        yield client


async def test_code_through_mcp_tools_call(gateway: ServerProcess) -> None:
    async with connected(gateway.url, CODER) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert "code" in listed and "shell" not in listed  # the policy's view for this caller
        result = await client.call_tool("code", {"code": SCRIPT})
    assert not result.is_error
    (block,) = result.content
    assert isinstance(block, TextContent)
    assert block.text.splitlines()[0] == f"PY 42 BIG {len(BIG)}"
    assert "SHELL denied" in block.text and "SHELL-42" not in block.text
    assert result.meta is not None
    trace = result.meta["llmops"]["trace"]
    assert trace["name"] == "code" and trace["status"] == "ok"
    check_inner(trace["inner"])
