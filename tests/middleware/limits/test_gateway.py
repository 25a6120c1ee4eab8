"""Rate limits through real gateway processes: 429 + headers, streams, and one limit held by two
gateways on one Redis."""

from __future__ import annotations

import uuid

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.conftest import GatewayFactory
from tests.support.configs import sim_config
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.integration
ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]


def limited(sim_url: str, key: str, rpm: int, **extra: object) -> dict[str, object]:
    return sim_config(
        sim_url, "sim-chat", chain=["authn", "authz", "limits"],
        auth={"static_keys": [{"key": key, "key_id": f"id-{key[-8:]}", "tenant": "t", "rpm": rpm, "tpm": 100_000},
                              {"key": "sk-admin-0123456789", "key_id": "adm", "tenant": "ops", "roles": ["admin"]}]},
        **extra,
    )


def test_429_with_openai_headers_and_stream_usage(sim: ServerProcess, start_gateway: GatewayFactory) -> None:
    key = f"sk-{uuid.uuid4().hex}"
    gw = start_gateway(limited(sim.url, key, 3))
    c = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)
    raw = c.chat.completions.with_raw_response.create(model="sim-chat", messages=ASK)
    assert raw.headers["x-ratelimit-limit-requests"] == "3"
    assert raw.headers["x-ratelimit-remaining-requests"] == "2"
    assert raw.headers["x-ratelimit-limit-tokens"] == "100000"
    assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
    stream = c.chat.completions.create(model="sim-chat", messages=ASK, stream=True,
                                       stream_options={"include_usage": True})
    assert [chunk for chunk in stream]
    c.chat.completions.create(model="sim-chat", messages=ASK)
    with pytest.raises(openai.RateLimitError) as info:
        c.chat.completions.create(model="sim-chat", messages=ASK)
    headers = info.value.response.headers
    assert int(headers["retry-after"]) >= 1 and headers["x-ratelimit-remaining-requests"] == "0"
    assert info.value.code == "rate_limit_exceeded"
    usage = httpx.get(f"{gw.url}/admin/usage", headers={"authorization": "Bearer sk-admin-0123456789"}).json()
    assert usage["keys"][f"id-{key[-8:]}"]["requests"] == 3
    assert usage["keys"][f"id-{key[-8:]}"]["completion_tokens"] > 0


def test_two_gateways_share_one_limit(sim: ServerProcess, start_gateway: GatewayFactory, redis_url: str) -> None:
    key = f"sk-{uuid.uuid4().hex}"
    config = limited(sim.url, key, 6, redis={"url": redis_url})
    gateways = [start_gateway(config), start_gateway(config)]
    clients = [openai.OpenAI(base_url=f"{g.url}/v1", api_key=key, max_retries=0) for g in gateways]
    ok = refused = 0
    for i in range(12):
        try:
            clients[i % 2].chat.completions.create(model="sim-chat", messages=ASK)
            ok += 1
        except openai.RateLimitError:
            refused += 1
    assert (ok, refused) == (6, 6)
