"""The agent loop with a scripted model, a fake policy engine and fake nodes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import orjson
import pytest

from gateway.kernel.config import settings_from_mapping
from gateway.kernel.context import Reply, RequestContext
from gateway.kernel.errors import InvalidRequest, QuotaExceeded, UpstreamTimeout
from gateway.kernel.extension import parse_extension
from gateway.kernel.policy import Decision, Obligations
from gateway.services.policy.gate import PolicyGate
from middleware.tools.authorize import ToolAuthorizer
from middleware.tools.calls import ToolCalls
from middleware.tools.catalog import ToolCatalog
from middleware.tools.loop import AgentLoop
from middleware.tools.sse import completion_chunks, sse_stream
from middleware.tools.stage import ToolsStage
from routers.scheduler import NodeFailed
from tests.routers.scheduler.fakes import FakeRunner, node, scheduler

PY = {"type": "llmops_tool", "name": "python"}
CLIENT_TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


def call(name: str, args: dict[str, Any], cid: str = "c1") -> dict[str, Any]:
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


def completion(content: str | None = None, calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = calls
    return {"id": "x", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 10, "total_tokens": 1010}}


class Model:
    """Answers from a script; records every body it was sent."""

    def __init__(self, *replies: dict[str, Any], delay: float = 0.0) -> None:
        self.replies = list(replies)
        self.bodies: list[dict[str, Any]] = []
        self.delay = delay

    async def __call__(self, ctx: RequestContext) -> Reply:
        ctx.body.pop("llmops", None)  # what the router does last: the model never sees the extension
        self.bodies.append(json.loads(json.dumps(ctx.body)))
        await asyncio.sleep(self.delay)
        answer = self.replies.pop(0)
        if ctx.stream:  # as a backend streams it: chunk by chunk, usage last
            chunks = completion_chunks(answer, include_usage=True)
            return Reply(stream=sse_stream(chunks), media_type="text/event-stream")
        return Reply(body=orjson.dumps(answer))


class Engine:
    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        self.documents: list[Mapping[str, Any]] = []

    async def decide(self, action: str, document: Mapping[str, Any]) -> Decision:
        self.documents.append(document)
        return self.decision


ALLOW = Decision(True, decision_id="d1")


def stage(engine: Engine | None, *, runner: FakeRunner | None = None, **tools: Any) -> ToolsStage:
    config = {"models": [{"name": "m", "deployments": [{"backend": "b"}],
                          "cost": {"input_per_mtok": 1.0, "output_per_mtok": 1.0}}],
              "backends": [{"name": "b", "base_url": "http://b/v1"}], "tools": tools}
    settings = settings_from_mapping(config, {})
    fake = runner or FakeRunner()
    fake.auto = True
    rts = ("python", "shell", "image")
    sched, _ = scheduler(node("n1", slots=4, runtimes=rts), node("n2", slots=4, runtimes=rts), runner=fake)
    secrets = {"API_KEY": "sk-1", "OTHER": "sk-2"}
    authorizer = ToolAuthorizer(PolicyGate(engine), secrets, unguarded=settings.tools.allow_without_policy)
    loop = AgentLoop(ToolCalls(authorizer, sched), "x-llmops-tool-steps")
    return ToolsStage(settings, ToolCatalog.from_settings(settings.tools), loop)


def ctx(tools: list[Any], **body: Any) -> RequestContext:
    raw = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": tools, **body}
    return RequestContext("req_1", "chat", "m", raw, {}, stream=bool(body.get("stream")),
                          extension=parse_extension(raw))


async def run(s: ToolsStage, c: RequestContext, model: Model) -> tuple[Reply, dict[str, Any]]:
    reply = await s(c, model)
    return reply, (orjson.loads(reply.body) if reply.stream is None else {})


async def test_requests_without_server_tools_pass_through_untouched() -> None:
    model = Model(completion("hello"))
    c = ctx([CLIENT_TOOL], llmops={"max_steps": 1})
    before = {k: v for k, v in json.loads(json.dumps(c.body)).items() if k != "llmops"}
    reply, body = await run(stage(Engine(ALLOW)), c, model)
    assert model.bodies == [before] and "llmops" not in body and not reply.headers


async def test_python_call_runs_on_a_node_and_the_answer_has_a_trace() -> None:
    model = Model(completion(calls=[call("python", {"code": "print(1)"})]), completion("done"))
    engine = Engine(ALLOW)
    reply, body = await run(stage(engine), ctx([PY, {"type": "function", "function": {"name": "shell"}}]), model)
    first = model.bodies[0]
    assert [t["function"]["name"] for t in first["tools"]] == ["python", "shell"]
    assert first["tools"][0]["function"]["parameters"]["required"] == ["code"]
    assert "stream" not in first and "llmops" not in first
    tool_msg = model.bodies[1]["messages"][-1]
    assert tool_msg["role"] == "tool" and tool_msg["tool_call_id"] == "c1" and tool_msg["content"].startswith("ran ")
    assert reply.headers == {"x-llmops-tool-steps": "2"}
    call_trace = body["llmops"]["trace"][0]["calls"][0]
    assert call_trace["status"] == "ok" and call_trace["node"] in ("n1", "n2") and call_trace["driver"] == "bwrap"
    assert body["usage"]["total_tokens"] == 2020
    doc = engine.documents[0]
    assert doc["action"] == "tool_call" and doc["resource"]["tool"]["name"] == "python"
    assert doc["resource"]["arguments"] == {"code": "print(1)"}


async def test_denied_call_is_fed_back_and_never_run() -> None:
    runner = FakeRunner()
    model = Model(completion(calls=[call("python", {"code": "1"})]), completion("ok"))
    engine = Engine(Decision(False, ("tool 'python' is not allowed",), decision_id="d9"))
    _, body = await run(stage(engine, runner=runner), ctx([PY]), model)
    assert runner.started == []
    assert "denied by policy" in model.bodies[1]["messages"][-1]["content"]
    assert body["llmops"]["trace"][0]["calls"][0] | {} == {
        "id": "c1", "name": "python", "status": "denied", "reason": "tool 'python' is not allowed", "decision_id": "d9"}


async def test_allowed_tools_obligation_is_enforced() -> None:
    runner = FakeRunner()
    engine = Engine(Decision(True, obligations=Obligations(allowed_tools=("calculator",))))
    model = Model(completion(calls=[call("python", {"code": "1"})]), completion("ok"))
    await run(stage(engine, runner=runner), ctx([PY]), model)
    assert runner.started == []


async def test_without_an_engine_calls_are_denied_unless_allowed_in_config() -> None:
    runner = FakeRunner()
    model = Model(completion(calls=[call("python", {"code": "1"})]), completion("ok"))
    _, body = await run(stage(None, runner=runner), ctx([PY]), model)
    assert runner.started == [] and body["llmops"]["trace"][0]["calls"][0]["status"] == "denied"
    model = Model(completion(calls=[call("python", {"code": "1"})]), completion("ok"))
    _, body = await run(stage(None, runner=runner, allow_without_policy=["python"]), ctx([PY]), model)
    assert len(runner.started) == 1 and body["llmops"]["trace"][0]["calls"][0]["status"] == "ok"


async def test_grants_carry_only_granted_secrets_and_hosts() -> None:
    seen: list[Any] = []

    class Recording(FakeRunner):
        async def run(self, n: Any, job: Any, answer: Any = None) -> Any:
            seen.append(job)
            return await super().run(n, job, answer)

    custom = {"name": "search", "image": "img", "command": ["run"], "secrets": ["API_KEY", "OTHER"],
              "egress": ["a.example", "b.example"]}
    granted = Obligations(allowed_secrets=("API_KEY",), allowed_egress=("a.example",))
    engine = Engine(Decision(True, obligations=granted))
    model = Model(completion(calls=[call("search", {"q": "x"})]), completion("ok"))
    offered = ctx([{"type": "llmops_tool", "name": "search"}])
    await run(stage(engine, runner=Recording(), custom=[custom]), offered, model)
    job = seen[0]
    assert dict(job.grants.secrets) == {"API_KEY": "sk-1"} and job.grants.egress == ("a.example",)
    assert job.grants.secret_files == ("API_KEY",)  # the explicit in-sandbox mode: a file, never env
    assert job.runtime == "image" and job.argv == ("run",) and json.loads(job.stdin) == {"q": "x"}
    assert engine.documents[0]["resource"]["secrets"] == ["API_KEY", "OTHER"]


async def test_bad_arguments_are_a_tool_error_for_the_model() -> None:
    model = Model(completion(calls=[call("python", {"nope": 1})]), completion("ok"))
    _, body = await run(stage(Engine(ALLOW)), ctx([PY]), model)
    assert "argument 'code' is required" in model.bodies[1]["messages"][-1]["content"]
    assert body["llmops"]["trace"][0]["calls"][0]["status"] == "error"


async def test_step_limit_forces_a_final_answer() -> None:
    looping = completion(calls=[call("python", {"code": "1"})])
    model = Model(looping, looping, completion("final"))
    _, body = await run(stage(Engine(ALLOW)), ctx([PY], llmops={"max_steps": 3}), model)
    assert [b.get("tool_choice") for b in model.bodies] == [None, None, "none"]
    assert body["choices"][0]["message"]["content"] == "final" and body["llmops"]["steps"] == 3


async def test_time_limit_is_a_504() -> None:
    model = Model(completion("slow"), delay=1.0)
    with pytest.raises(UpstreamTimeout) as info:
        await run(stage(Engine(ALLOW)), ctx([PY], llmops={"max_time_s": 0.1}), model)
    assert info.value.code == "tool_loop_time_limit"


async def test_cost_limit_stops_the_loop() -> None:
    model = Model(completion(calls=[call("python", {"code": "1"})]), completion("x"))
    with pytest.raises(QuotaExceeded) as info:
        await run(stage(Engine(ALLOW)), ctx([PY], llmops={"max_cost_usd": 0.0005}), model)
    assert info.value.code == "tool_loop_cost_limit" and len(model.bodies) == 1


async def test_mixed_calls_return_the_client_call_only() -> None:
    runner = FakeRunner()
    model = Model(completion(calls=[call("python", {"code": "1"}), call("lookup", {}, "c2")]))
    _, body = await run(stage(Engine(ALLOW), runner=runner), ctx([PY, CLIENT_TOOL]), model)
    assert [c["function"]["name"] for c in body["choices"][0]["message"]["tool_calls"]] == ["lookup"]
    assert runner.started == []
    statuses = [c["status"] for c in body["llmops"]["trace"][0]["calls"]]
    assert statuses == ["client", "error"]


async def test_a_streaming_client_gets_the_answering_step_relayed() -> None:
    model = Model(completion(calls=[call("python", {"code": "1"})]), completion("the answer is here"))
    c = ctx([PY], stream=True, stream_options={"include_usage": True})
    reply, _ = await run(stage(Engine(ALLOW)), c, model)
    assert all(b["stream"] is True for b in model.bodies)  # each step was asked for as a stream
    assert reply.stream is not None and reply.media_type == "text/event-stream"
    frames = [f async for f in reply.stream]
    assert frames[-1] == b"data: [DONE]\n\n"
    chunks = [orjson.loads(f[6:]) for f in frames[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "the answer is here"
    assert chunks[-1]["usage"]["total_tokens"] == 2020 and chunks[-2]["llmops"]["steps"] == 2
    assert chunks[-2]["llmops"]["trace"][0]["calls"][0]["status"] == "ok"
    assert c.usage is not None and c.usage.total_tokens == 2020


async def test_stream_without_usage_requested_hides_the_usage_chunk() -> None:
    model = Model(completion(calls=[call("python", {"code": "1"})]), completion("short"))
    reply, _ = await run(stage(Engine(ALLOW)), ctx([PY], stream=True), model)
    assert reply.stream is not None
    chunks = [orjson.loads(f[6:]) for f in [f async for f in reply.stream][:-1]]
    assert all(c["choices"] for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["llmops"]["steps"] == 2


async def test_workspace_calls_are_pinned_to_one_node() -> None:
    runner = FakeRunner()
    calls = [call("python", {"code": str(i)}, f"c{i}") for i in range(4)]
    model = Model(completion(calls=calls), completion(calls=calls), completion("ok"))
    await run(stage(Engine(ALLOW), runner=runner), ctx([PY], llmops={"workspace": "w1"}), model)
    assert len(runner.started) == 8 and len({n for n, _ in runner.started}) == 1


async def test_node_failure_without_retry_is_a_clear_error() -> None:
    runner = FakeRunner()
    runner.fail_on.update({"n1", "n2"})
    model = Model(completion(calls=[call("python", {"code": "1"})]))
    with pytest.raises(NodeFailed):
        await run(stage(Engine(ALLOW), runner=runner), ctx([PY]), model)


async def test_unknown_extension_tool_and_n_are_rejected() -> None:
    with pytest.raises(InvalidRequest, match="Unknown server-side tool 'nope'"):
        await run(stage(Engine(ALLOW)), ctx([{"type": "llmops_tool", "name": "nope"}]), Model())
    with pytest.raises(InvalidRequest, match="Unknown server-side tool 'nope'"):  # beside a known one too
        await run(stage(Engine(ALLOW)), ctx([PY, {"type": "llmops_tool", "name": "nope"}]), Model())
    with pytest.raises(InvalidRequest, match="n = 1"):
        await run(stage(Engine(ALLOW)), ctx([PY], n=2), Model())
    with pytest.raises(InvalidRequest, match="llmops.max_steps"):
        await run(stage(Engine(ALLOW)), ctx([PY], llmops={"max_steps": -1}), Model())
