"""``POST /v1/responses`` and its state, in process: the real endpoint, chain and translation, a scripted
chat backend, and a small in-memory fake of the store contract (``gateway/kernel/response_state.py``;
the PostgreSQL store is tested on its own)."""

from __future__ import annotations

import io
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from gateway.http.responses import error_response
from gateway.http.responses_api.endpoint import ResponsesEndpoint, fresh_copy
from gateway.http.responses_api.files import InputFiles
from gateway.http.responses_api.state import ResponseState
from gateway.kernel.config import BackendSettings, settings_from_mapping
from gateway.kernel.context import Reply, RequestContext
from gateway.kernel.errors import GatewayError
from gateway.kernel.observability.logging import JsonLog
from gateway.kernel.observability.metrics import Metrics
from gateway.kernel.response_state import Order, Page, StoredResponse
from gateway.kernel.responses import RESPONSE, content_text
from gateway.kernel.schemas import ResponsesRequest
from gateway.services.policy.gate import PolicyGate
from gateway.wiring import Gateway
from routers.backends import responses
from tests.support.openapi import validate
from tests.support.responses_events import sse_events, validate_events

CONFIG: dict[str, Any] = {"backends": [{"name": "chat", "base_url": "http://127.0.0.1:9/v1"}],
                          "models": [{"name": "m", "deployments": [{"backend": "chat"}]}]}


class MemoryStore:
    """The store contract in memory, per tenant."""

    def __init__(self) -> None:
        self.responses: dict[tuple[str, str], StoredResponse] = {}
        self.conversations: dict[tuple[str, str], list[dict[str, Any]]] = {}

    async def put(self, tenant: str, response: dict[str, Any], input_items: list[dict[str, Any]], *,
                  previous_response_id: str | None = None, conversation_id: str | None = None) -> None:
        self.responses[tenant, response["id"]] = StoredResponse(
            response["id"], tenant, response, input_items, previous_response_id, conversation_id, 0)

    async def update(self, tenant: str, response: dict[str, Any]) -> bool:
        return False

    async def get(self, tenant: str, response_id: str) -> StoredResponse | None:
        return self.responses.get((tenant, response_id))

    async def context_items(self, tenant: str, response_id: str) -> list[dict[str, Any]] | None:
        chain: list[StoredResponse] = []
        at: str | None = response_id
        while at is not None and (found := self.responses.get((tenant, at))) is not None:
            chain.append(found)
            at = found.previous_response_id
        if not chain:
            return None
        return [item for s in reversed(chain) for item in (*s.input_items, *s.response["output"])]

    async def input_items(self, tenant: str, response_id: str, *, after: str | None, limit: int,
                          order: Order) -> Page | None:
        return None

    async def delete(self, tenant: str, response_id: str) -> bool:
        return self.responses.pop((tenant, response_id), None) is not None

    async def find_item(self, tenant: str, item_id: str) -> dict[str, Any] | None:
        kept = [item for (t, _), s in self.responses.items() if t == tenant
                for item in (*s.input_items, *s.response["output"])]
        kept += [item for (t, _), items in self.conversations.items() if t == tenant for item in items]
        return next((item for item in kept if item.get("id") == item_id), None)

    async def all_items(self, tenant: str, conversation_id: str) -> list[dict[str, Any]] | None:
        return self.conversations.get((tenant, conversation_id))

    async def append(self, tenant: str, conversation_id: str, items: list[dict[str, Any]]) -> bool:
        if (tenant, conversation_id) not in self.conversations:
            return False
        self.conversations[tenant, conversation_id].extend(items)
        return True


class EchoChat:
    """A chat backend that answers with what it was sent: how many messages, and the last one's text."""

    def __init__(self, settings: BackendSettings, metrics: Metrics) -> None:
        self.name = settings.name
        self.seen: list[list[dict[str, Any]]] = []

    async def send(self, ctx: RequestContext, upstream_model: str) -> Reply:
        return await responses.over_chat(self._chat, ctx, upstream_model)

    async def _chat(self, ctx: RequestContext, upstream_model: str) -> Reply:
        messages = ctx.body["messages"]
        self.seen.append(messages)
        text = f"{len(messages)} messages, last: {content_text(messages[-1]['content'])}"
        usage = {"prompt_tokens": 1, "completion_tokens": 1}
        if ctx.body.get("stream"):
            return Reply(stream=_stream(text, upstream_model, usage), media_type="text/event-stream")
        completion = {"id": "c", "created": 1, "model": upstream_model, "usage": usage,
                      "choices": [{"index": 0, "finish_reason": "stop",
                                   "message": {"role": "assistant", "content": text}}]}
        return Reply(body=orjson.dumps(completion))

    async def ready(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None


async def _stream(text: str, model: str, usage: dict[str, int]) -> AsyncGenerator[bytes, None]:
    for choice, extra in (({"index": 0, "delta": {"content": text}, "finish_reason": "stop"}, {}), (None, usage)):
        doc = {"id": "c", "created": 1, "model": model, "choices": [choice] if choice else [], "usage": extra or None}
        yield b"data: " + orjson.dumps(doc) + b"\n\n"
    yield b"data: [DONE]\n\n"


def app_with(state: ResponseState) -> tuple[Starlette, Gateway]:
    gateway = Gateway(settings_from_mapping(CONFIG, {}), JsonLog(io.BytesIO()), Metrics(), backend_factory=EchoChat)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        assert gateway.services is not None
        endpoint = ResponsesEndpoint(gateway, InputFiles(gateway.services.vector_stores, PolicyGate(None)), state)

        async def handle(request: Request) -> Response:
            try:
                return await endpoint.handle(request, None)
            except GatewayError as err:
                return error_response(err)

        app.router.routes.append(Route("/v1/responses", handle, methods=["POST"]))
        yield
        await gateway.aclose()

    return Starlette(lifespan=lifespan), gateway


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def http(store: MemoryStore) -> Iterator[TestClient]:
    app, _ = app_with(ResponseState(store, store))
    with TestClient(app) as client:
        yield client


def ask(http: TestClient, **body: Any) -> dict[str, Any]:
    resp = http.post("/v1/responses", json={"model": "m", **body})
    doc: dict[str, Any] = resp.json()
    if resp.status_code == 200:
        validate(doc, "Response")
    else:
        doc["status_code"] = resp.status_code
    return doc


def text_of(response: dict[str, Any]) -> str:
    return str(response["output"][-1]["content"][0]["text"])


def test_previous_response_id_prepends_the_conversation_so_far(http: TestClient, store: MemoryStore) -> None:
    first = ask(http, input="Hi", instructions="Be brief")
    assert text_of(first) == "2 messages, last: Hi"
    second = ask(http, input="And then?", previous_response_id=first["id"])
    assert second["previous_response_id"] == first["id"] and second["instructions"] is None
    assert text_of(second) == "3 messages, last: And then?"  # Hi, the answer, the new turn (not the instructions)
    third = ask(http, input=[{"role": "user", "content": "Last"}], previous_response_id=second["id"])
    assert text_of(third) == "5 messages, last: Last"
    kept = store.responses["default", second["id"]]
    assert kept.previous_response_id == first["id"] and kept.response == second
    assert kept.input_items[0]["id"].startswith("msg_")
    for item in kept.input_items:
        validate(item, "ItemResource")


def test_unknown_or_foreign_previous_response_is_a_404(http: TestClient, store: MemoryStore) -> None:
    missing = ask(http, input="x", previous_response_id="resp_nope")
    assert missing["status_code"] == 404
    assert missing["error"]["code"] == "previous_response_not_found"
    assert missing["error"]["param"] == "previous_response_id"
    theirs = ask(http, input="x")
    store.responses["other", theirs["id"]] = store.responses.pop(("default", theirs["id"]))
    assert ask(http, input="x", previous_response_id=theirs["id"])["status_code"] == 404


def test_store_false_keeps_nothing(http: TestClient, store: MemoryStore) -> None:
    response = ask(http, input="x", store=False)
    assert response["store"] is False and not store.responses


def test_conversation_items_come_first_and_the_turn_is_appended(http: TestClient, store: MemoryStore) -> None:
    store.conversations["default", "conv_1"] = []
    first = ask(http, input="Hi", conversation="conv_1")
    assert first["conversation"] == {"id": "conv_1"}
    items = store.conversations["default", "conv_1"]
    assert [i["type"] for i in items] == ["message", "message"] and items[1]["id"] == first["output"][0]["id"]
    second = ask(http, input="More", conversation={"id": "conv_1"})
    assert text_of(second) == "3 messages, last: More"
    assert len(store.conversations["default", "conv_1"]) == 4
    unknown = ask(http, input="x", conversation="conv_nope")
    assert (unknown["status_code"], unknown["error"]["code"], unknown["error"]["param"]) == (
        404, "conversation_not_found", "conversation")


def test_previous_response_and_conversation_together_is_a_400(http: TestClient) -> None:
    both = ask(http, input="x", previous_response_id="resp_1", conversation="conv_1")
    assert both["status_code"] == 400 and both["error"]["param"] == "previous_response_id"


def test_streams_are_kept_too(http: TestClient, store: MemoryStore) -> None:
    with http.stream("POST", "/v1/responses", json={"model": "m", "input": "Hi", "stream": True}) as resp:
        events = sse_events(resp.read().decode())
    validate_events(events)
    final = events[-1]["response"]
    assert store.responses["default", final["id"]].response == final


def test_without_stores_state_is_refused_and_store_accepted() -> None:
    app, _ = app_with(ResponseState())
    with TestClient(app) as http:
        assert ask(http, input="x", store=True)["status"] == "completed"
        for param, value in (("previous_response_id", "resp_1"), ("conversation", "conv_1")):
            refused = ask(http, input="x", **{param: value})
            assert (refused["status_code"], refused["error"]["param"], refused["error"]["code"]) == (
                400, param, "storage_not_configured")


@pytest.mark.parametrize(("body", "param"), [
    ({"input": [{"type": "message", "role": "user", "content": 3}]}, "input[0].content"),
    ({"input": [{"role": "user", "content": [{"type": "input_text"}]}]}, "input[0].content[0].text"),
    ({"input": [{"type": "function_call", "call_id": "c", "name": "f"}]}, "input[0].arguments"),
    ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
    ({"input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
    ({"input": "x", "text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name"),
    ({"input": "x", "max_output_tokens": 4}, "max_output_tokens"),
    ({"input": "x", "temperature": 3}, "temperature"),
    ({"input": "x", "background": True}, "background"),  # no response store here
    ({"input": "x", "background": True, "store": False}, "background"),
    ({}, "input"),
])
def test_bad_input_is_a_400_naming_the_param(http: TestClient, body: dict[str, Any], param: str) -> None:
    refused = ask(http, **body)
    assert refused["status_code"] == 400 and refused["error"]["param"] == param, refused


async def test_a_stream_is_kept_before_its_terminal_event_goes_out(store: MemoryStore) -> None:
    ctx = RequestContext("r", "responses", "m", {}, {}, True)
    final = {"id": "resp_1", "output": []}

    async def chunks() -> AsyncGenerator[bytes, None]:
        yield b"event: response.created\n\n"
        ctx.set(RESPONSE, final)  # what the adapter does just before the terminal event
        yield b"event: response.completed\n\n"

    request = ResponsesRequest(model="m", input="x")
    kept = ResponseState(store, store).kept_stream(Reply(stream=chunks()), ctx, [], request)
    assert kept.stream is not None
    seen = []
    async for chunk in kept.stream:
        seen.append((chunk, ("default", "resp_1") in store.responses))
    assert seen == [(b"event: response.created\n\n", False), (b"event: response.completed\n\n", True)]


def test_a_cached_response_gets_new_ids_and_this_requests_echoes() -> None:
    cached = {"id": "resp_old", "model": "m", "status": "completed", "metadata": {"a": "old"},
              "output": [{"id": "msg_old", "type": "message"}], "usage": {"input_tokens": 1}}
    fresh = fresh_copy(cached, {"model": "m", "input": "x", "metadata": {"a": "new"}, "store": False})
    assert fresh["id"] != "resp_old" and fresh["output"][0]["id"].startswith("msg_")
    assert fresh["output"][0]["id"] != "msg_old" and fresh["metadata"] == {"a": "new"} and fresh["store"] is False
    assert fresh["usage"] == {"input_tokens": 1}
