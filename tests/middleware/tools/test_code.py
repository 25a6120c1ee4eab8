"""Code mode in the tools stage: a scripted model, a policy that forbids ``shell``, and fake nodes whose
code job "script" makes the calls the test lists (``FakeRunner.inner``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from gateway.kernel.config import settings_from_mapping
from gateway.kernel.config.loader import ConfigError
from gateway.kernel.context import RequestContext
from gateway.kernel.extension import parse_extension
from gateway.kernel.policy import Decision
from gateway.services.policy.gate import PolicyGate
from middleware.tools.authorize import ToolAuthorizer
from middleware.tools.calls import ToolCalls
from middleware.tools.catalog import ToolCatalog
from middleware.tools.code import for_offer
from middleware.tools.loop import AgentLoop
from middleware.tools.responses import plan
from middleware.tools.stage import ToolsStage
from tests.middleware.tools.test_stage import Engine, Model, call, completion, ctx, run
from tests.routers.scheduler.fakes import FakeRunner, node, scheduler

CODE = {"type": "llmops_tool", "name": "code"}
PY = {"type": "llmops_tool", "name": "python"}
SH = {"type": "llmops_tool", "name": "shell"}


class NoShell(Engine):
    """Allows every tool call but ``shell``; each decision names its tool."""

    def __init__(self) -> None:
        super().__init__(Decision(True))

    async def decide(self, action: str, document: Mapping[str, Any]) -> Decision:
        self.documents.append(document)
        name = document["resource"]["tool"]["name"]
        if name == "shell":
            return Decision(False, ("tool 'shell' is not allowed",), decision_id="d-shell")
        return Decision(True, decision_id=f"d-{name}")


def code_stage(engine: Engine, runner: FakeRunner, builtin: tuple[str, ...] = ("python", "shell", "code")
               ) -> ToolsStage:
    config = {"models": [{"name": "m", "deployments": [{"backend": "b"}]}],
              "backends": [{"name": "b", "base_url": "http://b/v1"}], "tools": {"builtin": list(builtin)}}
    settings = settings_from_mapping(config, {})
    runner.auto = True
    sched, _ = scheduler(node("n1", slots=4, runtimes=("python", "shell", "code")), runner=runner)
    authorizer = ToolAuthorizer(PolicyGate(engine), {})
    loop = AgentLoop(ToolCalls(authorizer, sched), "x-llmops-tool-steps")
    return ToolsStage(settings, ToolCatalog.from_settings(settings.tools), loop)


async def test_the_code_tool_is_described_with_the_other_tools_offered() -> None:
    model = Model(completion("fine"))
    await run(code_stage(NoShell(), FakeRunner()), ctx([CODE, PY]), model)
    (code,) = [t["function"] for t in model.bodies[0]["tools"] if t["function"]["name"] == "code"]
    assert "from llmops_tools import call" in code["description"]
    assert "- python(code: string, stdin: string (optional)): Run Python 3 code" in code["description"]
    assert "shell(" not in code["description"]  # not offered in this request
    assert code["parameters"]["required"] == ["code"]


def test_alone_it_says_there_is_nothing_to_call_and_it_is_not_a_default_builtin() -> None:
    settings = settings_from_mapping({"tools": {"builtin": ["code"]}}, {})
    entry = ToolCatalog.from_settings(settings.tools).get("code")
    assert entry is not None and "No other tool is offered" in for_offer(entry, [entry]).spec.description
    default = settings_from_mapping({}, {})
    assert ToolCatalog.from_settings(default.tools).get("code") is None


async def test_inner_calls_are_decided_by_policy_run_and_traced_under_the_code_call() -> None:
    runner, engine = FakeRunner(), NoShell()
    runner.inner = [("python", {"code": "print(1)"}), ("shell", {"script": "echo no"}), ("code", {"code": "1"}),
                    ("http_request", {"url": "https://example.com"})]
    model = Model(completion(calls=[call("code", {"code": "..."}, cid="k1")]), completion("done"))
    _, body = await run(code_stage(engine, runner), ctx([CODE, PY, SH]), model)

    ran = [job_id for _, job_id in runner.started]
    assert ran == ["req_1-s1-c0", "req_1-s1-c0-i1"]  # the code job, then its python call; never shell
    statuses = [(a["status"], a["ok"]) for a in runner.answers]
    assert statuses == [("ok", True), ("denied", False), ("error", False), ("error", False)]
    assert runner.answers[0]["content"].startswith("ran req_1-s1-c0-i1")
    assert "denied by policy" in runner.answers[1]["content"] and "not allowed" in runner.answers[1]["content"]
    assert runner.answers[2]["content"] == "error: code cannot call itself"
    assert "'http_request' is not offered in this request (offered: python, shell)" in runner.answers[3]["content"]

    (traced,) = body["llmops"]["trace"][0]["calls"]
    assert traced["name"] == "code" and traced["status"] == "ok" and traced["decision_id"] == "d-code"
    inner = traced["inner"]
    assert [(c["id"], c["name"], c["status"], c["via"]) for c in inner] == [
        ("k1.1", "python", "ok", "code"), ("k1.2", "shell", "denied", "code"),
        ("k1.3", "code", "error", "code"), ("k1.4", "http_request", "error", "code")]
    assert inner[0]["node"] == "n1" and inner[0]["decision_id"] == "d-python"
    assert inner[1]["decision_id"] == "d-shell" and "node" not in inner[1]

    asked = {d["resource"]["tool"]["name"]: d["resource"] for d in engine.documents}
    assert "via" not in asked["code"] and asked["python"]["via"] == "code" and asked["shell"]["via"] == "code"
    assert asked["python"]["arguments"] == {"code": "print(1)"}
    assert model.bodies[1]["messages"][-1]["content"].startswith("ran req_1-s1-c0")  # only the script's output


def test_code_runs_only_on_bwrap() -> None:
    with pytest.raises(ConfigError, match="only the bwrap driver"):
        settings_from_mapping({"tools": {"builtin": ["code"], "options": {"code": {"driver": "docker"}}}}, {})
    with pytest.raises(ConfigError, match="reserved name 'code'"):
        settings_from_mapping({"tools": {"custom": [{"name": "code", "image": "x"}]}}, {})


def test_the_responses_api_gets_the_same_description() -> None:
    settings = settings_from_mapping({"tools": {"builtin": ["python", "code"]}}, {})
    raw = {"model": "m", "input": "hi", "tools": [{"type": "function", "name": "code"},
                                                  {"type": "function", "name": "python"}]}
    c = RequestContext("req_1", "responses", "m", raw, {}, extension=parse_extension(raw))
    planned = plan(c, ToolCatalog.from_settings(settings.tools))
    assert planned is not None
    (code,) = [t for t in planned.body["tools"] if t["name"] == "code"]
    assert "Tools the script can call:\n- python(code: string" in code["description"]
