"""Upstream failures become OpenAI-style 502/503/504 errors; broken streams end with an error event."""

from __future__ import annotations

import json
import socket
import time

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory, SimFactory
from tests.support.configs import sim_config
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.integration

ASK = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def flaky(start_sim: SimFactory, start_gateway: GatewayFactory) -> ServerProcess:
    sim = start_sim("--name", "flaky")
    config = sim_config(sim.url)
    config["backends"][0]["timeouts"] = {"first_byte_s": 0.5}  # type: ignore[index]
    return start_gateway(config)


@pytest.fixture
def client(flaky: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{flaky.url}/v1", api_key="unused", max_retries=0)


@pytest.mark.parametrize(("upstream", "status"), [(500, 502), (502, 502), (503, 503), (504, 504)])
def test_upstream_status_maps_to_gateway_error(client: openai.OpenAI, upstream: int, status: int) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="sim-chat", messages=ASK, extra_body={"sim": {"status": upstream}})  # type: ignore[arg-type]
    assert caught.value.status_code == status
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "api_error"


def test_upstream_400_is_relayed(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="sim-chat", messages=ASK, extra_body={"sim": {"status": 400}})  # type: ignore[arg-type]


def test_upstream_429_keeps_retry_after(flaky: ServerProcess) -> None:
    body = {"model": "sim-chat", "messages": ASK, "sim": {"status": 429, "retry_after": 3}}
    resp = httpx.post(f"{flaky.url}/v1/chat/completions", json=body)
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "3"


def test_slow_first_byte_is_a_504(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="sim-chat", messages=ASK, extra_body={"sim": {"ttft_ms": 2000}})  # type: ignore[arg-type]
    assert caught.value.status_code == 504


def test_unreachable_backend_is_a_503(start_gateway: GatewayFactory) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gateway = start_gateway(sim_config(f"http://127.0.0.1:{port}"))
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="sim-chat", messages=ASK)  # type: ignore[arg-type]
    assert caught.value.status_code == 503
    ready = httpx.get(f"{gateway.url}/readyz")
    assert ready.status_code == 503 and ready.json()["backends"]["sim"] == "unreachable"


def test_mid_stream_disconnect_ends_with_an_error_event(flaky: ServerProcess) -> None:
    body = {"model": "sim-chat", "messages": ASK, "stream": True, "sim": {"disconnect_after": 2}}
    with httpx.stream("POST", f"{flaky.url}/v1/chat/completions", json=body) as resp:
        assert resp.status_code == 200
        events = [line[6:] for line in resp.iter_lines() if line.startswith("data: ")]
    assert "[DONE]" not in events
    assert json.loads(events[-1])["error"]["type"] == "api_error"


def test_openai_client_raises_on_a_broken_stream(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="sim-chat", messages=ASK, stream=True, extra_body={"sim": {"disconnect_after": 2}}  # type: ignore[arg-type]
    )
    with pytest.raises(openai.APIError):
        list(stream)


def test_readiness_fits_a_service(sim: ServerProcess, start_gateway: GatewayFactory) -> None:
    """One backend down takes the pod out only when a model has no deployment left to serve it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    backends = [{"name": "up", "base_url": f"{sim.url}/v1"}, {"name": "down", "base_url": down}]
    both = {"name": "sim-chat", "deployments": [{"backend": "up"}, {"backend": "down"}]}
    served = start_gateway({"backends": backends, "models": [both]})
    ready = httpx.get(f"{served.url}/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["models"]["sim-chat"]["status"] == "degraded"
    assert ready.json()["backends"] == {"up": "ok", "down": "unreachable"}
    assert httpx.get(f"{served.url}/livez").json() == {"status": "ok"}
    orphan = {"name": "sim-code", "deployments": [{"backend": "down"}]}
    stranded = start_gateway({"backends": backends, "models": [both, orphan]})
    ready = httpx.get(f"{stranded.url}/readyz")
    assert ready.status_code == 503 and ready.json()["models"]["sim-code"]["status"] == "unready"
    assert 'llmops_model_ready{model="sim-code"} 0.0' in httpx.get(f"{stranded.url}/metrics").text


def test_shutdown_past_the_grace_period_says_so(start_sim: SimFactory, start_gateway: GatewayFactory) -> None:
    """SIGTERM with a stream and a request still running past server.graceful_shutdown_s: the stream
    ends with a ``server_shutting_down`` error event, the request gets a 503 in the envelope."""
    import signal
    import threading

    slow = start_sim("--name", "slow-shutdown", "--itl-ms", "400")
    config = sim_config(slow.url, "sim-chat")
    config["server"] = {"graceful_shutdown_s": 1}
    gateway = start_gateway(config)
    assert gateway.proc is not None
    waiting: dict[str, httpx.Response] = {}

    def request() -> None:
        body = {"model": "sim-chat", "messages": ASK, "sim": {"ttft_ms": 8000}}
        waiting["reply"] = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=30)

    blocked = threading.Thread(target=request)
    blocked.start()
    deadline = time.monotonic() + 10  # the waiting request is in before SIGTERM closes the door
    while not httpx.get(f"{slow.url}/_sim/requests").json()["data"] and time.monotonic() < deadline:
        time.sleep(0.02)
    body = {"model": "sim-chat", "messages": ASK, "stream": True, "max_tokens": 60}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, timeout=30) as resp:
        lines = resp.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
        assert '"choices"' in first
        gateway.proc.send_signal(signal.SIGTERM)
        events = [line[6:] for line in lines if line.startswith("data: ")]
    blocked.join(30)
    assert events and "[DONE]" not in events
    assert json.loads(events[-1])["error"]["code"] == "server_shutting_down"
    reply = waiting["reply"]
    assert reply.status_code == 503 and reply.json()["error"]["code"] == "server_shutting_down"
