"""Server-side tools on ``POST /v1/responses``: the real ``openai`` client → a real gateway (with a
response store and vector stores on real PostgreSQL) → the simulator as the model, the ``python`` tool run in a bwrap
sandbox on a real ``llmops node``. Every Response and stream event is held to OpenAI's description.

Policy as in ``test_agent_loop.py``: ``sk-agent`` may run anything, ``sk-trial`` only the calculator.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory
from tests.gateway.services.vectorstores.fixtures import DOCUMENTS
from tests.integration.test_agent_loop import DIGEST, QUESTION, gateway_config, node_drivers, start_node, wait_for_tools
from tests.support.openapi import validate
from tests.support.processes import ServerProcess, unavailable
from tests.support.responses_events import sse_events, types_of, validate_events
from tests.support.services import new_database

pytestmark = pytest.mark.integration

PYTHON: Any = {"type": "llmops_tool", "name": "python"}
WEATHER: Any = {"type": "function", "name": "get_weather", "description": "Weather for a city", "strict": False,
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


@pytest.fixture(scope="module")
def url(sim: ServerProcess, start_gateway: GatewayFactory, postgres_dsn: str) -> Iterator[str]:
    config = {**gateway_config(sim.url, "bwrap"), "postgres": {"dsn": new_database(postgres_dsn, "rtools")},
              "chain": ["authn", "rag", "tools"]}
    gateway = start_gateway(config)
    node = start_node(gateway, "bwrap", "node-rtools")
    try:
        if "bwrap" not in node_drivers(node):
            unavailable("the bwrap driver")
        wait_for_tools(client_for(gateway.url))
        yield gateway.url
    finally:
        node.stop()


def client_for(url: str, key: str = "sk-agent") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)


def test_the_sha256_is_computed_on_the_node_and_the_calls_are_output_items(url: str) -> None:
    client = client_for(url)
    raw = client.responses.with_raw_response.create(model="sim-chat", input=QUESTION, tools=[PYTHON])
    response = raw.parse()
    body = json.loads(raw.http_response.text)
    validate(body, "Response")
    assert DIGEST in response.output_text and response.status == "completed"
    assert [item.type for item in response.output] == ["function_call", "function_call_output", "message"]
    call, output = body["output"][0], body["output"][1]
    assert call["name"] == "python" and "hashlib" in json.loads(call["arguments"])["code"]
    assert output["call_id"] == call["call_id"] and DIGEST in output["output"]
    assert raw.headers["x-llmops-tool-steps"] == "2"
    trace = body["llmops"]["trace"][0]["calls"][0]
    assert trace["status"] == "ok" and trace["node"] == "node-rtools" and trace["driver"] == "bwrap"
    assert response.usage is not None and response.usage.total_tokens > 0
    kept = client.responses.retrieve(response.id)  # the endpoint kept the Response the stage built
    assert [item.type for item in kept.output] == ["function_call", "function_call_output", "message"]
    follow = client.responses.create(model="sim-chat", input="Thanks!", previous_response_id=response.id)
    assert follow.status == "completed" and follow.output_text


def test_the_same_streamed(url: str) -> None:
    client = client_for(url)
    events = list(client.responses.create(model="sim-chat", input=QUESTION, tools=[PYTHON], stream=True))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert DIGEST in text
    final = events[-1]
    assert final.type == "response.completed"
    assert [item.type for item in final.response.output] == ["function_call", "function_call_output", "message"]
    assert final.response.usage is not None and final.response.usage.total_tokens > 0
    kept = client.responses.retrieve(final.response.id)
    assert DIGEST in kept.output_text and len(kept.output) == 3


def test_the_stream_events_match_the_description(url: str) -> None:
    body = {"model": "sim-chat", "input": QUESTION, "tools": [PYTHON], "stream": True}
    reply = httpx.post(f"{url}/v1/responses", json=body, headers={"authorization": "Bearer sk-agent"}, timeout=60)
    assert reply.status_code == 200 and reply.headers["x-llmops-tool-steps"] == "2"
    events = sse_events(reply.text)
    validate_events(events)
    assert types_of(events)[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                                    "response.output_item.done"]
    assert events[-1]["response"]["llmops"]["trace"][0]["calls"][0]["status"] == "ok"


def test_a_tool_the_policy_forbids_is_denied_and_never_run(url: str) -> None:
    raw = client_for(url, "sk-trial").responses.with_raw_response.create(
        model="sim-chat", input=QUESTION, tools=[PYTHON])
    body = json.loads(raw.http_response.text)
    validate(body, "Response")
    output = body["output"][1]
    assert output["type"] == "function_call_output" and "denied by policy" in output["output"]
    assert DIGEST not in raw.parse().output_text
    call = body["llmops"]["trace"][0]["calls"][0]
    assert call["status"] == "denied" and "node" not in call and call["decision_id"]


def test_a_client_side_function_is_handed_back(url: str) -> None:
    response = client_for(url).responses.create(
        model="sim-chat", input='Use get_weather for "Paris".', tools=[PYTHON, WEATHER])
    assert [(item.type, getattr(item, "name", None)) for item in response.output] == [("function_call", "get_weather")]


def test_an_unknown_server_tool_is_a_400_naming_tools(url: str) -> None:
    unknown: Any = {"type": "llmops_tool", "name": "nope"}
    with pytest.raises(openai.BadRequestError) as err:
        client_for(url).responses.create(model="sim-chat", input="x", tools=[unknown])
    assert isinstance(err.value.body, dict) and err.value.body["param"] == "tools"


def test_a_function_tool_with_only_a_registered_name_is_the_server_side_tool(url: str) -> None:
    bare: Any = {"type": "function", "name": "python", "parameters": None, "strict": None}
    response = client_for(url).responses.create(model="sim-chat", input=QUESTION, tools=[bare])
    assert DIGEST in response.output_text and response.output[1].type == "function_call_output"


@pytest.fixture(scope="module")
def store(url: str) -> tuple[str, str]:
    client = client_for(url)
    file_id = client.files.create(file=("zebras.txt", DOCUMENTS["zebras.txt"]), purpose="assistants").id
    store_id = client.vector_stores.create(name="animals").id
    client.vector_stores.files.create(vector_store_id=store_id, file_id=file_id)
    deadline = time.monotonic() + 60
    while client.vector_stores.files.retrieve(file_id, vector_store_id=store_id).status == "in_progress":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return store_id, file_id


def test_file_search_and_a_server_side_tool_together(url: str, store: tuple[str, str]) -> None:
    store_id, file_id = store
    search: Any = {"type": "file_search", "vector_store_ids": [store_id]}
    raw = client_for(url).responses.with_raw_response.create(
        model="sim-chat", input='What coat do zebras have? And what is the SHA-256 of "zebra"?',
        tools=[search, PYTHON])
    body = json.loads(raw.http_response.text)
    validate(body, "Response")
    assert raw.headers["x-llmops-rag"] == "augmented"
    assert [item["type"] for item in body["output"]] == [
        "file_search_call", "function_call", "function_call_output", "message"]
    assert hashlib.sha256(b"zebra").hexdigest() in raw.parse().output_text
    assert body["output"][3]["content"][0]["annotations"][0]["file_id"] == file_id


def test_a_background_response_runs_the_server_side_tool_on_the_node(url: str) -> None:
    client = client_for(url)
    queued = client.responses.create(model="sim-chat", input=QUESTION, tools=[PYTHON], background=True)
    assert queued.status == "queued"
    deadline = time.monotonic() + 60
    while (done := client.responses.retrieve(queued.id)).status in ("queued", "in_progress"):
        assert time.monotonic() < deadline, "the background response never finished"
        time.sleep(0.2)
    assert done.status == "completed" and DIGEST in done.output_text
    assert [item.type for item in done.output] == ["function_call", "function_call_output", "message"]
    raw = client.responses.with_raw_response.retrieve(queued.id)
    validate(json.loads(raw.http_response.text), "Response")
    events = list(client.responses.retrieve(queued.id, stream=True))
    assert events[-1].type == "response.completed" and DIGEST in events[-1].response.output_text
