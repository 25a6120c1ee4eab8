"""The tools stage on route ``responses``: the agent loop with a scripted model, a fake policy engine and
fake nodes, its answer as a Response (or Responses events) held to OpenAI's published description."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from gateway.kernel.context import Reply, RequestContext
from gateway.kernel.errors import InvalidRequest, UnsupportedCapability
from gateway.kernel.extension import parse_extension
from gateway.kernel.policy import Decision
from gateway.kernel.responses import FILE_SEARCH, RESPONSE, FileSearch
from tests.middleware.tools.test_stage import ALLOW, Engine, Model, call, completion, stage
from tests.routers.scheduler.fakes import FakeRunner
from tests.support.openapi import validate
from tests.support.responses_events import sse_events, types_of, validate_events

PY: dict[str, Any] = {"type": "llmops_tool", "name": "python"}
SEARCH: dict[str, Any] = {"type": "file_search", "vector_store_ids": ["vs_1"]}
FOUND = FileSearch(("hi",), ({"file_id": "file-1", "filename": "a.txt", "text": "zebras", "score": 0.9,
                              "attributes": {}},))
LOOKUP: dict[str, Any] = {"type": "function", "name": "lookup", "parameters": {"type": "object"}, "strict": False}


def rctx(tools: list[Any], **body: Any) -> RequestContext:
    raw = {"model": "m", "input": [{"type": "message", "role": "user", "content": "hi"}], "tools": tools, **body}
    return RequestContext("req_1", "responses", "m", raw, {}, stream=bool(body.get("stream")),
                          extension=parse_extension(raw))


async def whole(c: RequestContext, model: Model, engine: Engine | None = None,
                runner: FakeRunner | None = None) -> tuple[Reply, dict[str, Any]]:
    reply = await stage(engine or Engine(ALLOW), runner=runner)(c, model)
    assert reply.stream is None, reply
    response = orjson.loads(reply.body)
    validate(response, "Response")
    return reply, response


async def events_of(reply: Reply) -> list[dict[str, Any]]:
    assert reply.stream is not None and reply.media_type == "text/event-stream"
    text = b"".join([frame async for frame in reply.stream]).decode()
    events = sse_events(text)
    validate_events(events)
    return events


async def test_python_call_runs_and_shows_as_call_and_output_items() -> None:
    model = Model(completion(calls=[call("python", {"code": "print(1)"})]), completion("the answer"))
    engine = Engine(ALLOW)
    c = rctx([PY], instructions="Be brief.")
    reply, response = await whole(c, model, engine)
    first = model.bodies[0]
    assert [m["role"] for m in first["messages"]] == ["system", "user"] and "stream" not in first
    assert first["tools"][0]["function"]["name"] == "python"
    assert first["tools"][0]["function"]["parameters"]["required"] == ["code"]
    tool_msg = model.bodies[1]["messages"][-1]
    assert tool_msg["role"] == "tool" and tool_msg["tool_call_id"] == "c1"
    assert engine.documents[0]["resource"]["arguments"] == {"code": "print(1)"}
    fc, out, msg = response["output"]
    assert (fc["type"], fc["name"], fc["call_id"], json.loads(fc["arguments"])) == (
        "function_call", "python", "c1", {"code": "print(1)"})
    assert out["type"] == "function_call_output" and out["call_id"] == "c1" and out["output"].startswith("ran ")
    assert msg["type"] == "message" and msg["content"][0]["text"] == "the answer"
    assert response["status"] == "completed" and response["usage"]["total_tokens"] == 2020
    assert response["tools"][0]["type"] == "function" and response["tools"][0]["name"] == "python"
    assert response["llmops"]["trace"][0]["calls"][0]["status"] == "ok"
    assert reply.headers == {"x-llmops-tool-steps": "2"}
    assert c.get(RESPONSE) == response and c.usage is not None and c.usage.total_tokens == 2020
    assert c.route == "responses" and c.body["tools"] == [PY]


async def test_a_flat_function_with_only_a_registered_name_is_server_side() -> None:
    model = Model(completion(calls=[call("python", {"code": "1"})]), completion("done"))
    runner = FakeRunner()
    _, response = await whole(rctx([{"type": "function", "name": "python", "parameters": None}]), model,
                              runner=runner)
    assert len(runner.started) == 1 and [i["type"] for i in response["output"]] == [
        "function_call", "function_call_output", "message"]


async def test_without_server_tools_the_request_passes_through_untouched() -> None:
    seen: list[RequestContext] = []

    async def router(ctx: RequestContext) -> Reply:
        seen.append(ctx)
        return Reply(body=b"{}")

    c = rctx([LOOKUP])
    before = json.loads(json.dumps(c.body))
    await stage(Engine(ALLOW))(c, router)
    assert seen == [c] and c.route == "responses" and c.body == before


async def test_a_denied_call_is_an_output_the_model_read_and_never_ran() -> None:
    runner = FakeRunner()
    model = Model(completion(calls=[call("python", {"code": "1"})]), completion("sorry"))
    engine = Engine(Decision(False, ("tool 'python' is not allowed",), decision_id="d9"))
    _, response = await whole(rctx([PY]), model, engine, runner)
    assert runner.started == []
    assert "denied by policy" in response["output"][1]["output"]
    assert response["llmops"]["trace"][0]["calls"][0]["status"] == "denied"


async def test_a_client_side_call_is_handed_back_as_a_function_call() -> None:
    runner = FakeRunner()
    model = Model(completion(calls=[call("python", {"code": "1"}), call("lookup", {"q": "x"}, "c2")]))
    _, response = await whole(rctx([PY, LOOKUP]), model, runner=runner)
    assert runner.started == []
    assert [(i["type"], i["name"], i["call_id"]) for i in response["output"]] == [("function_call", "lookup", "c2")]
    assert [c["status"] for c in response["llmops"]["trace"][0]["calls"]] == ["client", "error"]


async def test_unknown_server_tools_are_a_400_naming_tools() -> None:
    for tools in ([{"type": "llmops_tool", "name": "nope"}], [PY, {"type": "llmops_tool", "name": "nope"}]):
        with pytest.raises(InvalidRequest, match="Unknown server-side tool 'nope'") as info:
            await stage(Engine(ALLOW))(rctx(tools), Model())
        assert info.value.param == "tools"


async def test_a_failed_model_step_is_returned_as_it_is() -> None:
    async def failing(ctx: RequestContext) -> Reply:
        return Reply(status=400, body=b'{"error": {"message": "no", "type": "invalid_request_error"}}')

    reply = await stage(Engine(ALLOW))(rctx([PY]), failing)
    assert reply.status == 400 and orjson.loads(reply.body)["error"]["message"] == "no"


async def test_a_stream_shows_the_tool_items_then_relays_the_answer() -> None:
    model = Model(completion(calls=[call("python", {"code": "1"})]), completion("the answer is here"))
    c = rctx([PY], stream=True)
    reply = await stage(Engine(ALLOW))(c, model)
    assert all(b["stream"] is True for b in model.bodies)
    assert reply.headers == {"x-llmops-tool-steps": "2"}
    events = await events_of(reply)
    kinds = types_of(events)
    assert kinds[:6] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.output_item.done", "response.output_item.added", "response.output_item.done"]
    assert kinds[-1] == "response.completed"
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == "the answer is here"
    assert {e["output_index"] for e in events if e["type"] == "response.output_text.delta"} == {2}
    final = events[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["function_call", "function_call_output", "message"]
    assert final["usage"]["total_tokens"] == 2020 and final["llmops"]["steps"] == 2
    assert c.get(RESPONSE) == final and c.usage is not None and c.usage.total_tokens == 2020


async def test_a_stream_handing_back_a_client_call() -> None:
    model = Model(completion(calls=[call("lookup", {"q": "x"}, "c2")]))
    events = await events_of(await stage(Engine(ALLOW))(rctx([PY, LOOKUP], stream=True), model))
    final = events[-1]["response"]
    assert events[-1]["type"] == "response.completed"
    assert [(i["type"], i["name"]) for i in final["output"]] == [("function_call", "lookup")]
    assert "response.function_call_arguments.done" in types_of(events)


async def test_the_file_search_item_comes_first_and_the_answer_is_cited() -> None:
    model = Model(completion(calls=[call("python", {"code": "1"})]), completion("see [file-1#0]"))
    c = rctx([SEARCH, PY])
    c.set(FILE_SEARCH, FOUND)  # as the rag stage leaves it
    _, response = await whole(c, model)
    assert [i["type"] for i in response["output"]] == [
        "file_search_call", "function_call", "function_call_output", "message"]
    assert response["output"][3]["content"][0]["annotations"][0]["file_id"] == "file-1"
    assert all(t["type"] == "function" for t in model.bodies[0]["tools"])  # the gateway searched, not the model


async def test_the_file_search_in_a_stream() -> None:
    model = Model(completion(calls=[call("python", {"code": "1"})]), completion("see [file-1#0]"))
    c = rctx([SEARCH, PY], stream=True)
    c.set(FILE_SEARCH, FOUND)
    events = await events_of(await stage(Engine(ALLOW))(c, model))
    added = [(e["output_index"], e["item"]["type"]) for e in events if e["type"] == "response.output_item.added"]
    assert added == [(0, "file_search_call"), (1, "function_call"), (2, "function_call_output"), (3, "message")]
    assert "response.output_text.annotation.added" in types_of(events)
    assert [i["type"] for i in events[-1]["response"]["output"]] == [
        "file_search_call", "function_call", "function_call_output", "message"]


async def test_file_search_without_the_rag_stage_is_a_400() -> None:
    with pytest.raises(UnsupportedCapability) as info:
        await stage(Engine(ALLOW))(rctx([SEARCH, PY]), Model())
    assert info.value.param == "tools"
