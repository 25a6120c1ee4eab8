"""Code mode on the node: a real bwrap sandbox runs the script, the stub ``llmops_tools`` reaches the
node over the bound unix socket, and each call comes out as an ``InnerCall`` the test answers as the
control plane would."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio

from executors.drivers.bwrap import BwrapDriver
from executors.errors import JobRejected
from executors.inner import MAX_CALLS, InnerAnswer, InnerCall
from executors.node.agent import NodeAgent, UnknownJob
from executors.spec import Job, Limits, Result
from tests.executors.conftest import require

_ids = itertools.count()

CALLS = """
from llmops_tools import ToolError, call, tools
print('PY', call('python', {'code': 'print(6 * 7)'}).strip())
try:
    tools.shell(script='echo hi')
except ToolError as exc:
    print('SHELL', exc.status, exc)
"""


@pytest_asyncio.fixture(loop_scope="session")
async def agent() -> AsyncIterator[NodeAgent]:
    driver = BwrapDriver()
    require(driver)
    node = NodeAgent("n", [driver], slots=2, code_idle_s=0.5)
    await node.start()
    try:
        yield node
    finally:
        await node.aclose()


def code_job(script: str, wall_seconds: float = 10.0) -> Job:
    return Job(id=f"code-{next(_ids)}", tool="code", runtime="code", code=script,
               limits=Limits(wall_seconds=wall_seconds))


Answer = Callable[[InnerCall], InnerAnswer]


async def drive(agent: NodeAgent, job: Job, answer: Answer) -> tuple[list[InnerCall], Result]:
    """Run ``job`` to its result, answering each pending call with ``answer``."""
    seen: list[InnerCall] = []
    outcome = await agent.start_code(job)
    while isinstance(outcome, InnerCall):
        seen.append(outcome)
        outcome = await agent.answer(job.id, outcome.call_id, answer(outcome))
    return seen, outcome


def by_name(call: InnerCall) -> InnerAnswer:
    if call.name == "python":
        return InnerAnswer("ok", "42\n")
    return InnerAnswer("denied", "error: the tool call was denied by policy and not run: no shell")


async def test_each_call_goes_out_and_its_answer_comes_back_into_the_script(agent: NodeAgent) -> None:
    seen, result = await drive(agent, code_job(CALLS), by_name)
    assert [(c.name, dict(c.arguments)) for c in seen] == [
        ("python", {"code": "print(6 * 7)"}), ("shell", {"script": "echo hi"})]
    assert result.exit_code == 0, result
    assert result.stdout.splitlines() == [
        "PY 42", "SHELL denied error: the tool call was denied by policy and not run: no shell"]
    assert result.driver == "bwrap"


async def test_a_script_without_calls_just_returns_its_result(agent: NodeAgent) -> None:
    outcome = await agent.start_code(code_job("import os\nprint(os.environ['LLMOPS_TOOLS_SOCKET'])"))
    assert isinstance(outcome, Result) and outcome.stdout.strip() == "/run/llmops-tools/tools.sock"


async def test_the_stub_is_read_only_and_the_socket_directory_cannot_be_listed(agent: NodeAgent) -> None:
    script = ("import os\ntry:\n    open('/job/lib/llmops_tools.py', 'a')\nexcept OSError as exc:\n"
              "    print('RO', type(exc).__name__)\ntry:\n    os.listdir('/run/llmops-tools')\n"
              "except OSError as exc:\n    print('LS', type(exc).__name__)\n")
    outcome = await agent.start_code(code_job(script))
    assert isinstance(outcome, Result)
    assert "RO " in outcome.stdout and "LS PermissionError" in outcome.stdout, outcome


async def test_answers_for_unknown_jobs_and_calls_are_refused(agent: NodeAgent) -> None:
    with pytest.raises(UnknownJob):
        await agent.answer("nope", "1", InnerAnswer("ok", ""))
    job = code_job("from llmops_tools import call\nprint(call('python', {}))")
    pending = await agent.start_code(job)
    assert isinstance(pending, InnerCall)
    with pytest.raises(JobRejected):
        await agent.answer(job.id, "99", InnerAnswer("ok", "x"))
    result = await agent.answer(job.id, pending.call_id, InnerAnswer("ok", "still waiting"))
    assert isinstance(result, Result) and result.stdout.strip() == "still waiting"


async def test_calls_past_the_bound_are_refused_by_the_node(agent: NodeAgent) -> None:
    script = (f"from llmops_tools import ToolError, call\nfor n in range({MAX_CALLS + 5}):\n    try:\n"
              "        call('python', {})\n    except ToolError as exc:\n        print(n, exc)\n        break\n")
    seen, result = await drive(agent, code_job(script, wall_seconds=30), lambda call: InnerAnswer("ok", ""))
    assert len(seen) == MAX_CALLS
    assert result.stdout.strip() == f"{MAX_CALLS} a code job may make at most {MAX_CALLS} tool calls"


async def test_an_oversized_or_malformed_call_is_an_error_inside_the_script(agent: NodeAgent) -> None:
    script = ("import json, os, socket\n"
              "def send(line):\n"
              "    s = socket.socket(socket.AF_UNIX)\n    s.connect(os.environ['LLMOPS_TOOLS_SOCKET'])\n"
              "    try:\n        s.sendall(line)\n"
              "    except OSError:\n        pass  # the node answered and closed early\n"
              "    print(json.loads(s.makefile('rb').readline())['content'])\n"
              "send(b'x' * (2 * 1024 * 1024) + b'\\n')\nsend(b'not json\\n')\nsend(b'[1]\\n')\n")
    seen, result = await drive(agent, code_job(script, wall_seconds=30), by_name)
    assert seen == []
    assert result.stdout.splitlines() == [
        "a tool call may be at most 1048576 bytes of JSON", "a tool call must be one line of JSON",
        'a tool call is {"name": str, "arguments": object}'], result


async def test_a_job_whose_control_plane_stops_answering_is_killed(agent: NodeAgent) -> None:
    job = code_job("from llmops_tools import call\ncall('python', {})\nprint('never')", wall_seconds=60)
    pending = await agent.start_code(job)
    assert isinstance(pending, InnerCall)
    for _ in range(200):  # the idle bound is 0.5 s here: the job is dropped and its sandbox killed
        if agent.free_slots == agent.slots:
            break
        await asyncio.sleep(0.05)
    assert agent.free_slots == agent.slots
    with pytest.raises(UnknownJob):
        await agent.answer(job.id, pending.call_id, InnerAnswer("ok", "too late"))
