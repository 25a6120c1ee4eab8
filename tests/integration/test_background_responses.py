"""``background: true`` end to end: real gateway processes on a real PostgreSQL database of this module's
own, the simulator (made slow through its ``/_sim/config`` where a run must still be going), the openai
SDK. Created, polled, streamed and resumed, cancelled, refused by the chain, isolated by tenant, and a
gateway SIGKILLed (or stopped) mid-run whose work the next process finishes or fails with the reason."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import psycopg
import pytest

from gateway.services.responses.queue import RESTARTED
from tests.conftest import GatewayFactory, SimFactory
from tests.support.openapi import validate
from tests.support.processes import ROOT, ServerProcess
from tests.support.responses_events import sse_events, types_of, validate_events
from tests.support.services import new_database

pytestmark = pytest.mark.integration

KEY_A, KEY_B, TINY = "sk-bg-team-a-0123456789", "sk-bg-team-b-0123456789", "sk-bg-tiny-0123456789"
FINAL = ("completed", "failed", "cancelled", "incomplete")
TOOL_RULE = """package llmops.authz

deny contains "the forbidden tool is not for anyone" if {
\tinput.action == "chat"
\t"forbidden_tool" in input.resource.tools
}
"""
FORBIDDEN: Any = {"type": "function", "name": "forbidden_tool", "parameters": {"type": "object", "properties": {}}}


def gateway_config(sim_url: str, dsn: str, rules: Path, **background: object) -> dict[str, object]:
    base = f"{sim_url}/v1"
    return {
        "backends": [{"name": "chat", "type": "openai", "base_url": base},
                     {"name": "nat", "type": "openai", "base_url": base, "responses": "native"}],
        "models": [{"name": "sim-chat", "deployments": [{"backend": "chat"}]},
                   {"name": "native-sim", "deployments": [{"backend": "nat"}]}],
        "chain": ["authn", "authz", "limits"],
        "auth": {"static_keys": [{"key": KEY_A, "key_id": "a", "tenant": "team-a"},
                                 {"key": KEY_B, "key_id": "b", "tenant": "team-b"},
                                 {"key": TINY, "key_id": "tiny", "tenant": "team-a", "rpm": 1}]},
        "policy": {"paths": [str(ROOT / "config" / "policies"), str(rules)], "reload_interval_s": 0},
        "limits": {"backend": "local"},
        "postgres": {"dsn": dsn},
        "responses": {"background": {"poll_interval_s": 0.05, "recover_interval_s": 0.2, "lease_s": 2,
                                     **background}},
    }


@pytest.fixture(scope="module")
def sim(start_sim: SimFactory) -> ServerProcess:
    return start_sim("--name", "background")


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = Path(tmp_path_factory.mktemp("policy")) / "tools_rule.rego"
    path.write_text(TOOL_RULE)
    return path


@pytest.fixture(scope="module")
def dsn(postgres_dsn: str) -> str:
    return new_database(postgres_dsn, "background")


@pytest.fixture(scope="module")
def gateway(start_gateway: GatewayFactory, sim: ServerProcess, dsn: str, rules: Path) -> ServerProcess:
    return start_gateway(gateway_config(sim.url, dsn, rules))


@pytest.fixture
def slow(sim: ServerProcess) -> Iterator[Callable[[float], None]]:
    """``slow(ms)``: the simulator waits this long between stream chunks (back to 0 after the test)."""

    def pace(itl_ms: float) -> None:
        httpx.post(f"{sim.url}/_sim/config", json={"itl_ms": itl_ms}).raise_for_status()

    yield pace
    pace(0)


def client(gateway: ServerProcess, key: str = KEY_A) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)


def settled(gateway: ServerProcess, response_id: str, key: str = KEY_A) -> dict[str, Any]:
    """The response once it is final (polled with GET), validated against the description."""
    deadline = time.monotonic() + 60
    while True:
        raw = client(gateway, key).responses.with_raw_response.retrieve(response_id)
        body: dict[str, Any] = json.loads(raw.content)
        validate(body, "Response")
        if body["status"] in FINAL:
            return body
        assert time.monotonic() < deadline, f"still {body['status']}"
        time.sleep(0.05)


def stored_events(dsn: str, response_id: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM llmops_response_events WHERE response_id = %s",
                           (response_id,)).fetchone()
    return int(row[0]) if row else 0


def status_in_database(dsn: str, response_id: str) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT response ->> 'status' FROM llmops_responses WHERE id = %s",
                           (response_id,)).fetchone()
    return str(row[0]) if row else ""


def running(gateway: ServerProcess, dsn: str, response_id: str) -> None:
    """Wait until the run is in progress with at least one event stored."""
    deadline = time.monotonic() + 30
    while stored_events(dsn, response_id) == 0:
        assert time.monotonic() < deadline, "no event was stored"
        time.sleep(0.05)
    assert client(gateway).responses.retrieve(response_id).status == "in_progress"


def replay(gateway: ServerProcess, response_id: str, after: int | None = None) -> list[dict[str, Any]]:
    query = "stream=true" + (f"&starting_after={after}" if after is not None else "")
    answer = httpx.get(f"{gateway.url}/v1/responses/{response_id}?{query}",
                       headers={"authorization": f"Bearer {KEY_A}"}, timeout=60)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
    return sse_events(answer.text)


@pytest.mark.parametrize("model", ["sim-chat", "native-sim"])
def test_a_background_response_is_queued_then_polled_to_completion(gateway: ServerProcess, model: str) -> None:
    raw = client(gateway).responses.with_raw_response.create(model=model, input="Hello from the background",
                                                             background=True, metadata={"job": "poll"})
    queued = json.loads(raw.content)
    validate(queued, "Response")
    assert (queued["status"], queued["background"], queued["output"]) == ("queued", True, [])
    done = settled(gateway, queued["id"])
    assert done["status"] == "completed" and done["error"] is None
    assert (done["id"], done["created_at"], done["background"]) == (queued["id"], queued["created_at"], True)
    assert done["metadata"] == {"job": "poll"}
    text = client(gateway).responses.retrieve(queued["id"]).output_text
    assert text.startswith("Simulated answer to: Hello from the background")
    items = list(client(gateway).responses.input_items.list(queued["id"]))
    assert [(i.type, i.role) for i in items] == [("message", "user")]  # type: ignore[union-attr]


@pytest.mark.parametrize("model", ["sim-chat", "native-sim"])
def test_a_background_stream_is_in_order_and_resumes_after_any_number(gateway: ServerProcess, model: str) -> None:
    answer = httpx.post(f"{gateway.url}/v1/responses", headers={"authorization": f"Bearer {KEY_A}"}, timeout=60,
                        json={"model": model, "input": "Stream it", "background": True, "stream": True})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
    events = sse_events(answer.text)
    validate_events(events)
    kinds = types_of(events)
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds
    response_id = events[0]["response"]["id"]
    snapshots = [e["response"] for e in events if "response" in e]
    assert {(r["id"], r["created_at"], r["background"]) for r in snapshots} == {
        (response_id, snapshots[0]["created_at"], True)}
    assert settled(gateway, response_id) == events[-1]["response"]
    for after in (0, 3, len(events) - 2):
        assert replay(gateway, response_id, after) == events[after + 1:]
        resumed = client(gateway).responses.retrieve(response_id, stream=True, starting_after=after)
        assert [e.sequence_number for e in resumed] == list(range(after + 1, len(events)))


def test_the_sdk_streams_a_background_response(gateway: ServerProcess) -> None:
    stream = client(gateway).responses.create(model="sim-chat", input="Through the SDK", background=True,
                                              stream=True)
    events = list(stream)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    last = events[-1]
    assert events[0].type == "response.created" and last.type == "response.completed"
    final = last.response
    assert final.background is True and final.output_text.startswith("Simulated answer to: Through the SDK")


def test_cancel_stops_a_running_response_and_its_stream_ends(gateway: ServerProcess, dsn: str,
                                                             slow: Callable[[float], None]) -> None:
    slow(400)  # about 12 s of answer: still running when it is cancelled
    response = client(gateway).responses.create(model="sim-chat", input="Take your time " * 9, background=True)
    running(gateway, dsn, response.id)
    followed: list[dict[str, Any]] = []
    follower = threading.Thread(target=lambda: followed.extend(replay(gateway, response.id)))
    follower.start()
    raw = client(gateway).responses.with_raw_response.cancel(response.id)
    cancelled = json.loads(raw.content)
    validate(cancelled, "Response")
    assert cancelled["status"] == "cancelled"
    follower.join(60)
    assert not follower.is_alive(), "the stream did not end"
    assert followed and "response.completed" not in types_of(followed)
    slow(0)
    assert settled(gateway, response.id)["status"] == "cancelled"
    assert replay(gateway, response.id) == followed  # nothing was added after the cancel


def test_a_policy_denial_ends_the_response_failed_with_its_reason(gateway: ServerProcess) -> None:
    response = client(gateway).responses.create(model="sim-chat", input="x", background=True, tools=[FORBIDDEN])
    assert response.status == "queued"
    failed = settled(gateway, response.id)
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    assert "Request denied by policy: the forbidden tool is not for anyone" in failed["error"]["message"]
    events = replay(gateway, response.id)
    validate_events(events)
    assert types_of(events) == ["response.failed"] and events[0]["response"] == failed


def test_an_unknown_tool_ends_the_response_failed(gateway: ServerProcess) -> None:
    response = client(gateway).responses.create(model="sim-chat", input="x", background=True,
                                                tools=[{"type": "web_search"}])  # not for a chat backend
    failed = settled(gateway, response.id)
    assert failed["status"] == "failed"
    assert failed["error"]["message"] == "Tools of type 'web_search' need a backend that speaks the Responses API."


def test_the_keys_rate_limit_applies_to_background_runs(gateway: ServerProcess) -> None:
    first = client(gateway, TINY).responses.create(model="sim-chat", input="one", background=True)
    second = client(gateway, TINY).responses.create(model="sim-chat", input="two", background=True)
    outcomes = sorted((settled(gateway, r.id, TINY) for r in (first, second)), key=lambda r: r["status"])
    assert [r["status"] for r in outcomes] == ["completed", "failed"]  # rpm 1: one run of the two
    assert outcomes[1]["error"]["code"] == "rate_limit_exceeded"


def test_history_and_conversation_are_read_and_written_by_the_run(gateway: ServerProcess, sim: ServerProcess) -> None:
    sdk = client(gateway)
    first = sdk.responses.create(model="sim-chat", input="First turn", background=True)
    settled(gateway, first.id)
    httpx.delete(f"{sim.url}/_sim/requests")
    second = sdk.responses.create(model="sim-chat", input="Second turn", background=True,
                                  previous_response_id=first.id)
    assert settled(gateway, second.id)["previous_response_id"] == first.id
    sent = [r["body"] for r in httpx.get(f"{sim.url}/_sim/requests").json()["data"] if r["method"] == "POST"]
    assert [m["role"] for m in sent[-1]["messages"]] == ["user", "assistant", "user"]
    conversation = sdk.conversations.create()
    third = sdk.responses.create(model="sim-chat", input="In a conversation", background=True,
                                 conversation=conversation.id)
    done = settled(gateway, third.id)
    items = list(sdk.conversations.items.list(conversation.id, order="asc"))
    assert [i.id for i in items][-1] == done["output"][-1]["id"] and len(items) == 2


def test_bad_requests_are_refused_at_once(gateway: ServerProcess) -> None:
    sdk = client(gateway)
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.responses.create(model="sim-chat", input="x", background=True, store=False)
    assert refused.value.body["param"] == "background"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError) as unknown:
        sdk.responses.create(model="no-such-model", input="x", background=True)
    assert unknown.value.body["param"] == "model"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError) as previous:
        sdk.responses.create(model="sim-chat", input="x", background=True, previous_response_id="resp_nope")
    assert previous.value.body["param"] == "previous_response_id"  # type: ignore[index]


def test_another_tenants_background_response_is_a_404(gateway: ServerProcess) -> None:
    mine = client(gateway).responses.create(model="sim-chat", input="mine", background=True)
    other = client(gateway, KEY_B)
    for call in (lambda: other.responses.retrieve(mine.id), lambda: other.responses.cancel(mine.id),
                 lambda: other.responses.retrieve(mine.id, stream=True, starting_after=0),
                 lambda: other.responses.input_items.list(mine.id), lambda: other.responses.delete(mine.id)):
        with pytest.raises(openai.NotFoundError):
            call()
    assert settled(gateway, mine.id)["status"] == "completed"


@pytest.mark.parametrize(("stop", "max_attempts", "outcome"), [
    (signal.SIGKILL, 2, "completed"),  # its lease expires; re-queued once, re-run by the next process
    (signal.SIGKILL, 1, "failed"),  # no attempt left: failed with the reason
    (signal.SIGTERM, 1, "completed"),  # a graceful stop gives the work back without counting the attempt
], ids=["sigkill-rerun", "sigkill-failed", "sigterm-rerun"])
def test_work_of_a_stopped_gateway_is_finished_or_failed_by_the_next(
        start_gateway: GatewayFactory, sim: ServerProcess, postgres_dsn: str, rules: Path,
        slow: Callable[[float], None], stop: signal.Signals, max_attempts: int, outcome: str) -> None:
    dsn = new_database(postgres_dsn, "stopped")
    config = gateway_config(sim.url, dsn, rules, max_attempts=max_attempts)
    slow(400)  # about 14 s of answer: still running when the gateway is stopped
    first = start_gateway(config)
    response = client(first).responses.create(model="sim-chat", input="Interrupted " * 25, background=True)
    running(first, dsn, response.id)
    first.signal(stop)
    assert first.proc is not None and first.proc.wait(30) == (-stop if stop == signal.SIGKILL else 0)
    slow(0)
    second = start_gateway(config)
    deadline = time.monotonic() + 60  # no request yet: the new process recovers and runs from its start
    while status_in_database(dsn, response.id) not in FINAL:
        assert time.monotonic() < deadline, "the new process did not take the work up"
        time.sleep(0.05)
    final = settled(second, response.id)
    events = replay(second, response.id)
    validate_events(events)
    assert final["status"] == outcome and events[-1]["response"] == final
    if outcome == "completed":  # re-run from the start: its events follow those of the stopped run
        assert events[-1]["type"] == "response.completed" and final["output"]
        assert types_of(events).count("response.created") == 2
    else:
        assert final["error"] == {"code": "server_error", "message": RESTARTED}
        assert events[-1]["type"] == "response.failed"
    second.stop()
