"""The Batch API end to end: real gateway processes on a real PostgreSQL database of this module's own, the
simulator as backend, the openai SDK. JSONL uploads checked line by line, batches of chat, embeddings and
responses lines run through the chain (a line the policy denies lands in the error file with the reason),
10,000 lines with every ``custom_id`` exactly once, cancel mid-batch, bad input as 400/404 in OpenAI's
envelope, and two replicas sharing one batch, one of them SIGKILLed mid-run."""

from __future__ import annotations

import collections
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.conftest import GatewayFactory, SimFactory
from tests.support.openapi import validate
from tests.support.processes import ROOT, ServerProcess
from tests.support.services import new_database

pytestmark = pytest.mark.integration

KEY_A, KEY_B = "sk-batch-team-a-0123456789", "sk-batch-team-b-0123456789"
FINAL = ("completed", "failed", "cancelled", "expired")
DENY_RULE = """package llmops.authz

deny contains "model sim-forbidden is not for team-a" if {
\tinput.action == "chat"
\tinput.resource.model == "sim-forbidden"
\tinput.subject.tenant == "team-a"
}
"""
FAST_JOBS = {"heartbeat_s": 0.5, "stalled_after_s": 2.0, "rescue_interval_s": 0.5, "poll_interval_s": 0.2,
             "shutdown_grace_s": 1.0}


def gateway_config(sim_url: str, dsn: str, rules: Path, **batches: object) -> dict[str, object]:
    return {
        "backends": [{"name": "sim", "type": "openai", "base_url": f"{sim_url}/v1"}],
        "models": [{"name": m, "deployments": [{"backend": "sim"}]} for m in ("sim-chat", "sim-embed",
                                                                              "sim-forbidden")],
        "chain": ["authn", "authz", "limits"],
        "auth": {"static_keys": [{"key": KEY_A, "key_id": "a", "tenant": "team-a"},
                                 {"key": KEY_B, "key_id": "b", "tenant": "team-b"}]},
        "policy": {"paths": [str(ROOT / "config" / "policies"), str(rules)], "reload_interval_s": 0},
        "limits": {"backend": "local"},
        "postgres": {"dsn": dsn},
        "jobs": FAST_JOBS,
        "batches": {"chunk_lines": 250, "concurrency": 16, **batches},
    }


@pytest.fixture(scope="module")
def sim(start_sim: SimFactory) -> ServerProcess:
    return start_sim("--name", "batches")


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = Path(tmp_path_factory.mktemp("policy")) / "deny_rule.rego"
    path.write_text(DENY_RULE)
    return path


@pytest.fixture(scope="module")
def dsn(postgres_dsn: str) -> str:
    return new_database(postgres_dsn, "batches")


@pytest.fixture(scope="module")
def gateway(start_gateway: GatewayFactory, sim: ServerProcess, dsn: str, rules: Path) -> Iterator[ServerProcess]:
    proc = start_gateway(gateway_config(sim.url, dsn, rules))
    yield proc
    proc.stop()  # its connections go back to the session's PostgreSQL now, not at the session's end


@pytest.fixture
def stopped_after(request: pytest.FixtureRequest) -> Iterator[list[ServerProcess]]:
    """Processes a test started, stopped when it ends (gateways hold PostgreSQL connections)."""
    procs: list[ServerProcess] = []
    yield procs
    for proc in procs:
        proc.stop()


@pytest.fixture
def slow(sim: ServerProcess) -> Iterator[None]:
    """The simulator waits before answering while the test runs (so a batch is still going)."""
    httpx.post(f"{sim.url}/_sim/config", json={"ttft_ms": 20}).raise_for_status()
    yield
    httpx.post(f"{sim.url}/_sim/config", json={"ttft_ms": 0}).raise_for_status()


def client(gateway: ServerProcess, key: str = KEY_A) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)


def jsonl(items: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(i) + b"\n" for i in items)


def chat(n: int, model: str = "sim-chat") -> dict[str, Any]:
    return {"custom_id": f"line-{n}", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": f"say {n}"}], "max_tokens": 8}}


def upload(c: openai.OpenAI, items: list[dict[str, Any]]) -> str:
    return c.files.create(file=("in.jsonl", jsonl(items)), purpose="batch").id


def start(c: openai.OpenAI, items: list[dict[str, Any]], endpoint: Any = "/v1/chat/completions") -> str:
    return c.batches.create(input_file_id=upload(c, items), endpoint=endpoint, completion_window="24h").id


def raw_batch(gateway: ServerProcess, batch_id: str, key: str = KEY_A) -> dict[str, Any]:
    reply = httpx.get(f"{gateway.url}/v1/batches/{batch_id}", headers={"authorization": f"Bearer {key}"})
    reply.raise_for_status()
    doc: dict[str, Any] = reply.json()
    validate(doc, "Batch")
    return doc


def settle(gateway: ServerProcess, batch_id: str, key: str = KEY_A, timeout_s: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        doc = raw_batch(gateway, batch_id, key)
        if doc["status"] in FINAL or time.monotonic() > deadline:
            return doc
        time.sleep(0.2)


def until(gateway: ServerProcess, batch_id: str, done: int, timeout_s: float = 60) -> dict[str, Any]:
    """The batch once at least ``done`` lines have a result."""
    deadline = time.monotonic() + timeout_s
    while True:
        doc = raw_batch(gateway, batch_id)
        counts = doc["request_counts"]
        if counts["completed"] + counts["failed"] >= done or time.monotonic() > deadline:
            return doc
        time.sleep(0.05)


def lines_of(c: openai.OpenAI, file_id: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in c.files.content(file_id).content.splitlines() if line.strip()]


def test_a_10000_line_chat_batch_completes_with_every_custom_id_exactly_once(gateway: ServerProcess) -> None:
    c = client(gateway)
    batch_id = start(c, [chat(n) for n in range(10_000)])
    created = raw_batch(gateway, batch_id)
    assert created["status"] in ("validating", "in_progress", "finalizing", "completed")
    done = settle(gateway, batch_id)
    assert done["status"] == "completed", done
    assert done["request_counts"] == {"total": 10_000, "completed": 10_000, "failed": 0}
    assert "error_file_id" not in done
    assert done["in_progress_at"] <= done["finalizing_at"] <= done["completed_at"]
    out = lines_of(c, done["output_file_id"])
    seen = collections.Counter(line["custom_id"] for line in out)
    assert set(seen) == {f"line-{n}" for n in range(10_000)} and set(seen.values()) == {1}
    first = out[0]
    assert first["response"]["status_code"] == 200 and first["error"] is None
    validate(first["response"]["body"], "CreateChatCompletionResponse")
    assert c.files.retrieve(done["output_file_id"]).purpose == "batch_output"


def test_embeddings_and_responses_lines(gateway: ServerProcess) -> None:
    c = client(gateway)
    embed: list[dict[str, Any]] = [{"custom_id": f"e{n}", "method": "POST", "url": "/v1/embeddings",
              "body": {"model": "sim-embed", "input": f"text {n}"}} for n in range(5)]
    responses: list[dict[str, Any]] = [{"custom_id": f"r{n}", "method": "POST", "url": "/v1/responses",
                  "body": {"model": "sim-chat", "input": f"hello {n}"}} for n in range(5)]
    for items, endpoint, schema in ((embed, "/v1/embeddings", "CreateEmbeddingResponse"),
                                    (responses, "/v1/responses", "Response")):
        done = settle(gateway, start(c, items, endpoint))
        assert done["status"] == "completed" and done["request_counts"]["completed"] == 5, done
        out = lines_of(c, done["output_file_id"])
        assert sorted(line["custom_id"] for line in out) == sorted(i["custom_id"] for i in items)
        for line in out:
            validate(line["response"]["body"], schema)


def test_a_line_the_policy_denies_lands_in_the_error_file_with_the_reason(gateway: ServerProcess) -> None:
    c = client(gateway)
    done = settle(gateway, start(c, [chat(0), chat(1, "sim-forbidden"), chat(2), chat(3, "no-such-model")]))
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 4, "completed": 2, "failed": 2}
    errors = {line["custom_id"]: line for line in lines_of(c, done["error_file_id"])}
    denied = errors["line-1"]["response"]
    assert denied["status_code"] == 403
    assert "model sim-forbidden is not for team-a" in denied["body"]["error"]["message"]
    assert errors["line-3"]["response"]["status_code"] == 404
    assert {line["custom_id"] for line in lines_of(c, done["output_file_id"])} == {"line-0", "line-2"}
    # another tenant's policy differs: the same line runs for team-b
    b = client(gateway, KEY_B)
    other = settle(gateway, start(b, [chat(1, "sim-forbidden")]), KEY_B)
    assert other["request_counts"] == {"total": 1, "completed": 1, "failed": 0}


@pytest.mark.parametrize(("content", "line", "param"), [
    (b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}\nnot json\n', 2, None),
    (jsonl([chat(1), chat(1)]), 2, "custom_id"),
    (jsonl([{**chat(1), "method": "GET"}]), 1, "method"),
    (jsonl([chat(1), {**chat(2), "url": "/v1/images/generations"}]), 2, "url"),
    (jsonl([{**chat(1), "body": [1]}]), 1, "body"),
    (jsonl([{**chat(1), "custom_id": ""}]), 1, "custom_id"),
])
def test_a_bad_batch_upload_is_a_400_naming_the_line(gateway: ServerProcess, content: bytes, line: int,
                                                      param: str | None) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(gateway).files.create(file=("in.jsonl", content), purpose="batch")
    error = caught.value.body
    assert isinstance(error, dict)
    assert f"line {line}" in error["message"]
    assert error["param"] == f"file.line[{line}]" + (f".{param}" if param else "")


def test_an_empty_batch_upload_is_a_400(gateway: ServerProcess) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(gateway).files.create(file=("in.jsonl", b"\n\n"), purpose="batch")
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "file"


def test_bad_batch_requests(gateway: ServerProcess) -> None:
    c = client(gateway)
    file_id = upload(c, [chat(0)])
    with pytest.raises(openai.NotFoundError):
        c.batches.create(input_file_id="file-nothere", endpoint="/v1/chat/completions", completion_window="24h")
    with pytest.raises(openai.NotFoundError):  # another tenant's file
        client(gateway, KEY_B).batches.create(input_file_id=file_id, endpoint="/v1/chat/completions",
                                              completion_window="24h")
    other = c.files.create(file=("notes.txt", b"hello"), purpose="user_data").id
    cases: list[tuple[dict[str, Any], str]] = [
        ({"input_file_id": other, "endpoint": "/v1/chat/completions", "completion_window": "24h"}, "input_file_id"),
        ({"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "1h"},
         "completion_window"),
        ({"input_file_id": file_id, "endpoint": "/v1/moderations", "completion_window": "24h"}, "endpoint"),
        ({"endpoint": "/v1/chat/completions", "completion_window": "24h"}, "input_file_id"),
        ({"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h",
          "metadata": {"k": 1}}, "metadata.k"),
    ]
    headers = {"authorization": f"Bearer {KEY_A}"}
    for body, param in cases:
        reply = httpx.post(f"{gateway.url}/v1/batches", json=body, headers=headers)
        assert reply.status_code == 400, (body, reply.text)
        assert reply.json()["error"]["type"] == "invalid_request_error"
        assert reply.json()["error"]["param"] == param, reply.text
    for path in ("/v1/batches/batch_nothere", "/v1/batches/batch_nothere/cancel", "/v1/files/file-nothere/content",
                 "/v1/batches/bad%20id"):
        method = "POST" if path.endswith("cancel") else "GET"
        reply = httpx.request(method, f"{gateway.url}{path}", headers=headers)
        assert reply.status_code == 404 and "error" in reply.json(), (path, reply.text)


def test_a_batch_and_its_files_are_the_tenants_own(gateway: ServerProcess) -> None:
    c = client(gateway)
    done = settle(gateway, start(c, [chat(0)]))
    b = client(gateway, KEY_B)
    with pytest.raises(openai.NotFoundError):
        b.batches.retrieve(done["id"])
    with pytest.raises(openai.NotFoundError):
        b.files.content(done["output_file_id"])
    with pytest.raises(openai.NotFoundError):
        b.batches.cancel(done["id"])
    assert done["id"] not in {x.id for x in b.batches.list()}
    assert c.files.content(done["input_file_id"]).content == jsonl([chat(0)])


def test_lines_for_another_endpoint_fail_the_batch_with_errors(gateway: ServerProcess) -> None:
    c = client(gateway)
    embed = {"custom_id": "e", "method": "POST", "url": "/v1/embeddings", "body": {"model": "sim-embed",
                                                                                   "input": "x"}}
    done = settle(gateway, start(c, [chat(0), embed]))
    assert done["status"] == "failed" and "failed_at" in done
    (error,) = done["errors"]["data"]
    assert error["line"] == 2 and error["param"] == "file.line[2].url" and "/v1/chat/completions" in error["message"]


def test_list_pages_with_a_cursor(gateway: ServerProcess) -> None:
    c = client(gateway, KEY_B)
    made = [start(c, [chat(n)]) for n in range(3)]
    first = c.batches.list(limit=2)
    assert [b.id for b in first.data] == made[::-1][:2] and first.has_more
    rest = c.batches.list(limit=2, after=first.data[-1].id)
    assert [b.id for b in rest.data][:1] == made[:1]
    reply = httpx.get(f"{gateway.url}/v1/batches", params={"limit": 2}, headers={"authorization": f"Bearer {KEY_B}"})
    validate(reply.json(), "ListBatchesResponse")
    bad = httpx.get(f"{gateway.url}/v1/batches", params={"limit": 0}, headers={"authorization": f"Bearer {KEY_B}"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "limit"


def test_cancel_mid_batch(gateway: ServerProcess, slow: None) -> None:
    c = client(gateway)
    batch_id = start(c, [chat(n) for n in range(3000)])
    until(gateway, batch_id, 1)
    cancelling = c.batches.cancel(batch_id)
    assert cancelling.status in ("cancelling", "cancelled")
    done = settle(gateway, batch_id)
    assert done["status"] == "cancelled" and "cancelled_at" in done
    ran = done["request_counts"]["completed"]
    assert 0 < ran < 3000
    out = lines_of(c, done["output_file_id"])
    assert len(out) == ran == len({line["custom_id"] for line in out})
    assert c.batches.cancel(batch_id).status == "cancelled"  # cancelling again changes nothing


def test_two_replicas_share_a_batch_and_a_sigkilled_one_loses_nothing(
        start_gateway: GatewayFactory, start_sim: SimFactory, postgres_dsn: str, rules: Path,
        stopped_after: list[ServerProcess]) -> None:
    sim = start_sim("--name", "batches-replicas", "--ttft-ms", "20")
    shared = new_database(postgres_dsn, "batches_replicas")
    config = gateway_config(sim.url, shared, rules, chunk_lines=100, concurrency=8)
    doomed, survivor = start_gateway(config), start_gateway(config)
    stopped_after += [doomed, survivor]
    c = client(survivor)
    batch_id = start(c, [chat(n) for n in range(3000)])
    until(survivor, batch_id, 600)
    doomed.signal(signal.SIGKILL)
    done = settle(survivor, batch_id)
    assert done["status"] == "completed", done
    assert done["request_counts"] == {"total": 3000, "completed": 3000, "failed": 0}
    seen = collections.Counter(line["custom_id"] for line in lines_of(c, done["output_file_id"]))
    assert set(seen) == {f"line-{n}" for n in range(3000)} and set(seen.values()) == {1}
    assert batch_id in doomed.logs() and "batch_chunk" in doomed.logs()  # it ran part of the batch
    assert '"jobs_rescued"' in survivor.logs()  # and the chunks it held were queued again


def test_lines_not_run_within_the_window_expire_into_the_error_file(
        start_gateway: GatewayFactory, start_sim: SimFactory, postgres_dsn: str, rules: Path,
        stopped_after: list[ServerProcess]) -> None:
    """Its own database: on the module's, the module's gateway (a replica with an instant backend) would take
    chunks of this batch too, and finish it within the window."""
    sim = start_sim("--name", "batches-late", "--ttft-ms", "50")
    alone = new_database(postgres_dsn, "batches_late")
    gateway = start_gateway(gateway_config(sim.url, alone, rules, completion_window_s=2, concurrency=4,
                                           chunk_lines=50))
    stopped_after.append(gateway)
    c = client(gateway)
    done = settle(gateway, start(c, [chat(n) for n in range(1000)]))
    assert done["status"] == "expired" and "expired_at" in done, done
    counts = done["request_counts"]
    # how many ran before the window closed depends on the machine's load; none is lost or twice
    assert counts["total"] == 1000 and counts["completed"] < 1000 and counts["failed"] == 1000 - counts["completed"]
    late = lines_of(c, done["error_file_id"])
    assert {line["error"]["code"] for line in late} == {"batch_expired"}
    ran = lines_of(c, done["output_file_id"]) if "output_file_id" in done else []
    seen = collections.Counter(line["custom_id"] for line in ran + late)
    assert set(seen) == {f"line-{n}" for n in range(1000)} and set(seen.values()) == {1}


def test_deleting_the_input_file_mid_batch_fails_the_batch(gateway: ServerProcess, slow: None) -> None:
    c = client(gateway)
    batch_id = start(c, [chat(n) for n in range(3000)])
    running = until(gateway, batch_id, 1)
    c.files.delete(running["input_file_id"])
    done = settle(gateway, batch_id)
    assert done["status"] == "failed" and "failed_at" in done, done
    (error,) = done["errors"]["data"]
    assert running["input_file_id"] in error["message"]


def test_a_batch_on_the_embedded_database(start_gateway: GatewayFactory, sim: ServerProcess, rules: Path,
                                          tmp_path: Path, stopped_after: list[ServerProcess]) -> None:
    config = gateway_config(sim.url, "", rules)
    config["postgres"] = {"embedded_dir": str(tmp_path / "pg")}
    gateway = start_gateway(config)
    stopped_after.append(gateway)
    c = client(gateway)
    done = settle(gateway, start(c, [chat(n) for n in range(3)]))
    assert done["status"] == "completed" and done["request_counts"]["completed"] == 3
