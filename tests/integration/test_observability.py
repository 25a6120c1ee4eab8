"""Request ids, structured access logs, metrics, health and readiness, graceful shutdown."""

from __future__ import annotations

import json
import signal
import threading
import time

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.conftest import GatewayFactory, SimFactory
from tests.support.configs import sim_config
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.integration

SECRET_PROMPT = "my-very-private-prompt-text"
BODY = {"model": "sim-chat", "messages": [{"role": "user", "content": SECRET_PROMPT}]}


def access_lines(gateway: ServerProcess, request_id: str) -> list[dict[str, object]]:
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in gateway.logs().splitlines() if line.startswith("{")]
        found = [line for line in lines if line.get("request_id") == request_id and line["event"] == "request"]
        if found:
            return found
        time.sleep(0.1)
    return []


def test_incoming_request_id_is_kept_and_logged(gateway: ServerProcess) -> None:
    resp = httpx.post(f"{gateway.url}/v1/chat/completions", json=BODY, headers={"x-request-id": "trace-abc.123"})
    assert resp.headers["x-request-id"] == "trace-abc.123"
    (line,) = access_lines(gateway, "trace-abc.123")
    assert line["status"] == 200 and line["route"] == "chat" and line["backend"] == "sim"
    assert isinstance(line["prompt_tokens"], int)


def test_unsafe_request_id_is_replaced(gateway: ServerProcess) -> None:
    resp = httpx.post(
        f"{gateway.url}/v1/chat/completions", json=BODY, headers={"x-request-id": "bad id with spaces and {braces}"}
    )
    assert resp.headers["x-request-id"].startswith("req_")


def test_logs_hold_no_prompt_and_no_secret(gateway: ServerProcess) -> None:
    resp = httpx.post(
        f"{gateway.url}/v1/chat/completions", json=BODY, headers={"authorization": "Bearer sk-secret-123"}
    )
    access_lines(gateway, resp.headers["x-request-id"])
    logs = gateway.logs()
    assert SECRET_PROMPT not in logs
    assert "sk-secret-123" not in logs


def samples(gateway: ServerProcess) -> list[Sample]:
    text = httpx.get(f"{gateway.url}/metrics").text
    return [s for family in text_string_to_metric_families(text)  # type: ignore[no-untyped-call]
            for s in family.samples]


def value(found: list[Sample], name: str, **labels: str) -> float:
    return sum(s.value for s in found if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_count_requests_with_request_id_exemplars(gateway: ServerProcess) -> None:
    before = value(samples(gateway), "llmops_requests_total", route="chat", backend="sim", status="200")
    resp = httpx.post(f"{gateway.url}/v1/chat/completions", json=BODY)
    request_id = resp.headers["x-request-id"]
    found = samples(gateway)
    assert value(found, "llmops_requests_total", route="chat", backend="sim", status="200") == before + 1
    assert value(found, "llmops_request_duration_seconds_count", route="chat") >= 1
    assert value(found, "llmops_upstream_duration_seconds_count", backend="sim") >= 1
    assert value(found, "llmops_tokens_total", backend="sim", kind="completion") > 0
    exemplars = [s.exemplar.labels["request_id"] for s in found if s.exemplar is not None]
    assert request_id in exemplars


def test_streamed_tokens_are_counted(gateway: ServerProcess) -> None:
    body = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body) as resp:
        request_id = resp.headers["x-request-id"]
        resp.read()
    (line,) = access_lines(gateway, request_id)
    assert isinstance(line["completion_tokens"], int) and line["completion_tokens"] > 0
    assert value(samples(gateway), "llmops_streamed_tokens_total", route="chat", backend="sim") > 0


def test_health_and_readiness(gateway: ServerProcess) -> None:
    assert httpx.get(f"{gateway.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{gateway.url}/readyz")
    assert ready.status_code == 200 and ready.json()["backends"] == {"sim": "ok"}


def test_client_disconnect_cancels_the_upstream_stream(start_sim: SimFactory, start_gateway: GatewayFactory) -> None:
    slow = start_sim("--name", "slow-stream", "--itl-ms", "200")
    gateway = start_gateway(sim_config(slow.url))
    body = {**BODY, "stream": True, "max_tokens": 40}
    started = time.monotonic()
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body) as resp:
        request_id = resp.headers["x-request-id"]
        next(resp.iter_raw())
    (line,) = access_lines(gateway, request_id)
    assert time.monotonic() - started < 3
    assert float(line["duration_ms"]) < 2000  # type: ignore[arg-type]
    assert value(samples(gateway), "llmops_in_flight_requests") == 1  # only the scrape itself


def test_sigterm_lets_an_in_flight_stream_finish(start_sim: SimFactory, start_gateway: GatewayFactory) -> None:
    slow = start_sim("--name", "graceful", "--itl-ms", "50")
    gateway = start_gateway(sim_config(slow.url))
    received: list[str] = []

    def consume() -> None:
        body = {**BODY, "stream": True, "max_tokens": 30}
        with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, timeout=30) as resp:
            received.extend(resp.iter_lines())

    reader = threading.Thread(target=consume)
    reader.start()
    time.sleep(0.4)
    gateway.signal(signal.SIGTERM)
    reader.join(30)
    assert "data: [DONE]" in received
    assert gateway.proc is not None and gateway.proc.wait(15) in (0, -signal.SIGTERM)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{gateway.url}/healthz", timeout=2)
