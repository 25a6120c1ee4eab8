"""Upstream failures become OpenAI-style 502/503/504 errors; broken streams end with an error event."""

from __future__ import annotations

import json
import socket

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
