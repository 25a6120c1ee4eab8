"""Done-when for the broker (issue 10): a tool calls a loopback HTTP service that requires a bearer token.
The call succeeds through the real gateway and a real enrolled node; the token reaches the service and
appears nowhere else: not in what the model received, not in the answer or its trace, not in the
gateway's or the node's logs. (``http_request`` runs on the node itself: no sandbox ever holds it.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory
from tests.integration.test_agent_loop import ADMIN, start_node
from tests.support.bearer_service import BearerService, bearer_service
from tests.support.configs import sim_config
from tests.support.processes import ROOT, ServerProcess

pytestmark = pytest.mark.integration

TOKEN = "tok-broker-7c1e9a5d3b"
ANSWER = "hello-from-the-protected-service"
HTTP_TOOL: Any = {"type": "llmops_tool", "name": "http_request"}



@pytest.fixture(scope="module")
def service() -> Iterator[BearerService]:
    with bearer_service(TOKEN, ANSWER) as running:
        yield running


@pytest.fixture(scope="module")
def plane(sim: ServerProcess, start_gateway: GatewayFactory,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    data = Path(tmp_path_factory.mktemp("policy")) / "broker.json"
    data.write_text(json.dumps({"policy": {"tools": {"http_request": {"egress": ["127.0.0.1", "127.0.0.1/32"],
                                                                        "secrets": ["SERVICE_TOKEN"]}}}}))
    keys = [{"key": "sk-broker-user", "key_id": "user", "tenant": "research"}, ADMIN]
    tools = {"enrollment": {"enabled": True}, "scheduler": {"node_ttl_s": 5},
             "secrets": {"SERVICE_TOKEN": {"value": TOKEN, "header": "Authorization", "format": "Bearer {value}",
                                           "hosts": ["127.0.0.1"]}}}
    config = sim_config(sim.url, "sim-chat", chain=["authn", "tools"], auth={"static_keys": keys}, tools=tools,
                        policy={"paths": [str(ROOT / "config" / "policies"), str(data)]})
    gateway = start_gateway(config)
    node = start_node(gateway, "bwrap", "node-broker")
    try:
        yield gateway, node
    finally:
        node.stop()


def test_the_broker_injects_a_token_nobody_else_sees(plane: tuple[ServerProcess, ServerProcess], sim: ServerProcess,
                                                     service: BearerService) -> None:
    gateway, node = plane
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-broker-user", max_retries=0, timeout=60)
    prompt = f'Use http_request for "{service.url}"'
    raw = None
    for _ in range(60):  # until the node's first heartbeat registered it
        try:
            raw = client.chat.completions.with_raw_response.create(
                model="sim-chat", messages=[{"role": "user", "content": prompt}], tools=[HTTP_TOOL])
            break
        except openai.APIStatusError as exc:
            if exc.status_code != 503:
                raise
            import time

            time.sleep(0.3)
    assert raw is not None
    body = raw.http_response.text
    call = json.loads(body)["llmops"]["trace"][0]["calls"][0]
    assert call["name"] == "http_request" and call["status"] == "ok", (call, body[:2000])
    assert f"Bearer {TOKEN}" in service.seen  # the service got the credential
    assert ANSWER in body  # the model saw the service's answer and answered with it
    seen_by_model = httpx.get(f"{sim.url}/_sim/requests").text
    assert ANSWER in seen_by_model
    for where, text in (("the answer and its trace", body), ("what the model received", seen_by_model),
                        ("the gateway's logs", "".join(gateway.output)), ("the node's logs", "".join(node.output))):
        assert TOKEN not in text, f"the token leaked into {where}"
