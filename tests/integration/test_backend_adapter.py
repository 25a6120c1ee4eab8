"""The OpenAI-compatible backend adapter as the upstream sees it: keys, renaming, pass-through."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory, SimFactory
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def upstream(start_sim: SimFactory) -> ServerProcess:
    return start_sim("--name", "adapter", "--api-key", "sk-upstream-secret")


def last_request(sim: ServerProcess) -> dict[str, Any]:
    log: list[dict[str, Any]] = httpx.get(f"{sim.url}/_sim/requests").json()["data"]
    return log[-1]


def config(sim_url: str, **backend: object) -> dict[str, object]:
    return {
        "backends": [{"name": "up", "type": "openai", "base_url": f"{sim_url}/v1", **backend}],
        "models": [{"name": "public-chat", "aliases": ["chat"], "deployments": [{"backend": "up", "model": "sim-7b"}]}],
    }


def test_key_from_config_renamed_model_and_unknown_fields(
    upstream: ServerProcess, start_gateway: GatewayFactory
) -> None:
    gateway = start_gateway(config(upstream.url, api_key="sk-upstream-secret"))
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-client-key", max_retries=0)
    reply = client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "hi"}], extra_body={"vendor_knob": {"x": 1}}
    )
    assert reply.choices[0].message.content
    seen = last_request(upstream)
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert headers["authorization"] == "Bearer sk-upstream-secret"  # the gateway's key, not the client's
    assert seen["body"]["model"] == "sim-7b"  # alias → public name → the backend's own name
    assert seen["body"]["vendor_knob"] == {"x": 1}  # unknown fields pass through


def test_key_from_environment(upstream: ServerProcess, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(
        config(upstream.url, api_key_env="UPSTREAM_KEY"), env={"UPSTREAM_KEY": "sk-upstream-secret"}
    )
    resp = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "public-chat", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert resp.status_code == 200


def test_a_wrong_upstream_key_is_a_502_that_does_not_echo_it(
    upstream: ServerProcess, start_gateway: GatewayFactory
) -> None:
    gateway = start_gateway(config(upstream.url, api_key="sk-wrong-key-123"))
    resp = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "public-chat", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert resp.status_code == 502
    assert resp.json()["error"]["code"] == "upstream_auth"
    assert "sk-wrong" not in resp.text
