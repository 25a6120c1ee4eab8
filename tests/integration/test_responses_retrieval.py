"""Responses with the gateway's own data: ``file_search`` over its vector stores (a ``file_search_call``
item, ``file_citation`` annotations), files by id in the input, and the cache for deterministic requests;
a real gateway with PostgreSQL + pgvector, the simulator, and the ``openai`` SDK."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory
from tests.gateway.services.vectorstores.fixtures import DOCUMENTS
from tests.support.openapi import validate
from tests.support.processes import ServerProcess
from tests.support.responses_events import sse_events, types_of, validate_events

pytestmark = pytest.mark.integration
KEYS = {"acme": "sk-responses-acme-0123456789", "globex": "sk-responses-globex-0123456789"}


@pytest.fixture(scope="module")
def gateway(sim: ServerProcess, start_gateway: GatewayFactory, postgres_dsn: str) -> ServerProcess:
    base = f"{sim.url}/v1"
    config: dict[str, object] = {
        "backends": [{"name": "chat", "type": "openai", "base_url": base},
                     {"name": "nat", "type": "openai", "base_url": base, "responses": "native"}],
        "models": [{"name": "sim-chat", "deployments": [{"backend": "chat"}]},
                   {"name": "native-sim", "deployments": [{"backend": "nat"}]}],
        "chain": ["authn", "cache", "rag"],
        "auth": {"static_keys": [{"key": key, "key_id": f"key-{t}", "tenant": t} for t, key in KEYS.items()]},
        "postgres": {"dsn": postgres_dsn},
    }
    return start_gateway(config)


def client(gateway: ServerProcess, tenant: str = "acme") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=KEYS[tenant], max_retries=0)


@pytest.fixture(scope="module")
def zebra_file(gateway: ServerProcess) -> str:
    return client(gateway).files.create(file=("zebras.txt", DOCUMENTS["zebras.txt"]), purpose="assistants").id


@pytest.fixture(scope="module")
def store(gateway: ServerProcess, zebra_file: str) -> str:
    c = client(gateway)
    store_id = c.vector_stores.create(name="animals").id
    c.vector_stores.files.create(vector_store_id=store_id, file_id=zebra_file)
    deadline = time.monotonic() + 60
    while c.vector_stores.files.retrieve(zebra_file, vector_store_id=store_id).status == "in_progress":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return store_id


def sim_bodies(sim: ServerProcess, path: str) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = httpx.get(f"{sim.url}/_sim/requests").json()["data"]
    return [r["body"] for r in log if r["method"] == "POST" and r["path"] == path]


def search_tool(store: str) -> Any:
    return {"type": "file_search", "vector_store_ids": [store]}


@pytest.mark.parametrize(("model", "path"), [("sim-chat", "/v1/chat/completions"), ("native-sim", "/v1/responses")])
def test_file_search_item_and_citations(gateway: ServerProcess, sim: ServerProcess, store: str, zebra_file: str,
                                        model: str, path: str) -> None:
    raw = client(gateway).responses.with_raw_response.create(
        model=model, input="What coat do zebras have?", tools=[search_tool(store)],
        include=["file_search_call.results"])
    body = json.loads(raw.text)
    validate(body, "Response")
    assert raw.headers["x-llmops-rag"] == "augmented"
    search, message = body["output"]
    assert search["type"] == "file_search_call" and search["queries"] == ["What coat do zebras have?"]
    assert search["results"][0]["file_id"] == zebra_file and "striped" in search["results"][0]["text"]
    notes = message["content"][0]["annotations"]
    assert notes and notes[0]["type"] == "file_citation" and notes[0]["file_id"] == zebra_file
    assert notes[0]["filename"] == "zebras.txt"
    sent = json.dumps(sim_bodies(sim, path)[-1])
    assert "black-and-white striped" in sent and "file_search" not in sent  # the gateway searched, not the model


def test_file_search_stream(gateway: ServerProcess, store: str) -> None:
    resp = httpx.post(f"{gateway.url}/v1/responses", headers={"authorization": f"Bearer {KEYS['acme']}"},
                      json={"model": "sim-chat", "input": "Zebra coats?", "tools": [search_tool(store)],
                            "stream": True})
    events = sse_events(resp.text)
    validate_events(events)
    kinds = types_of(events)
    assert "response.file_search_call.completed" in kinds and "response.output_text.annotation.added" in kinds
    assert [i["type"] for i in events[-1]["response"]["output"]] == ["file_search_call", "message"]
    with client(gateway).responses.stream(model="sim-chat", input="Zebra coats?", tools=[search_tool(store)]) as s:
        final = s.get_final_response()
    assert final.output[0].type == "file_search_call" and final.output_text


def test_another_tenants_store_is_not_searched(gateway: ServerProcess, store: str) -> None:
    with pytest.raises(openai.NotFoundError):
        client(gateway, "globex").responses.create(model="sim-chat", input="Zebras?", tools=[search_tool(store)])


def test_input_file_by_id(gateway: ServerProcess, sim: ServerProcess, zebra_file: str) -> None:
    content: Any = [{"type": "input_text", "text": "Summarize the file."},
                    {"type": "input_file", "file_id": zebra_file}]
    response = client(gateway).responses.create(model="sim-chat", input=[{"role": "user", "content": content}])
    assert response.status == "completed"
    sent = sim_bodies(sim, "/v1/chat/completions")[-1]["messages"][-1]["content"]
    assert sent.startswith("Summarize the file.\n<file name=\"zebras.txt\">") and "striped coats" in sent
    with pytest.raises(openai.NotFoundError):
        client(gateway, "globex").responses.create(model="sim-chat", input=[{"role": "user", "content": content}])


def test_deterministic_requests_are_cached_with_fresh_ids(gateway: ServerProcess, sim: ServerProcess) -> None:
    c = client(gateway)
    before = len(sim_bodies(sim, "/v1/chat/completions"))
    first = c.responses.with_raw_response.create(model="sim-chat", input="Cache me once", temperature=0)
    again = c.responses.with_raw_response.create(model="sim-chat", input="Cache me once", temperature=0,
                                                  metadata={"n": "2"})
    assert (first.headers["x-llmops-cache"], again.headers["x-llmops-cache"]) == ("miss", "hit")
    assert len(sim_bodies(sim, "/v1/chat/completions")) == before + 1
    one, two = json.loads(first.text), json.loads(again.text)
    validate(two, "Response")
    assert one["output"][0]["content"] == two["output"][0]["content"] and one["id"] != two["id"]
    assert two["metadata"] == {"n": "2"} and one["metadata"] == {}


def test_input_image_by_id(gateway: ServerProcess, sim: ServerProcess) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    image = client(gateway).files.create(file=("dot.png", png), purpose="vision").id
    content: Any = [{"type": "input_text", "text": "What is in the picture?"},
                    {"type": "input_image", "file_id": image, "detail": "low"}]
    response = client(gateway).responses.create(model="sim-chat", input=[{"role": "user", "content": content}])
    assert "[saw 1 image(s)" in response.output_text
    part = sim_bodies(sim, "/v1/chat/completions")[-1]["messages"][-1]["content"][1]
    assert part["type"] == "image_url" and part["image_url"]["url"].startswith("data:image/png;base64,")
