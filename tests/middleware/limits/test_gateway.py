"""Rate limits through real gateway processes: 429 + headers, streams, and one limit held by two
gateways on one Redis."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

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


def test_two_gateways_admit_at_most_the_limit_in_any_window(sim: ServerProcess, start_gateway: GatewayFactory,
                                                             redis_url: str) -> None:
    """Two replicas on one Redis, 10 requests per 2 s, 80 requests spread over 4 s across clock windows: at
    most 10 admitted in any 2 s (a fixed window admitted 20 within moments of its boundary)."""
    key = f"sk-{uuid.uuid4().hex}"
    config = limited(sim.url, key, 10, redis={"url": redis_url})
    config["limits"] = {"window_s": 2}
    gateways = [start_gateway(config), start_gateway(config)]
    admitted: list[tuple[float, float]] = []  # sent, answered: the admission happened in between
    body = {"model": "sim-chat", "messages": ASK}
    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=100)) as http:
        for gw in gateways:  # warm (the admin key is not limited): the timed requests find open connections
            for _ in range(4):
                http.post(f"{gw.url}/v1/chat/completions", json=body,
                          headers={"authorization": "Bearer sk-admin-0123456789"}).raise_for_status()

        def one(i: int) -> None:
            time.sleep(max(0.0, begin + i * 0.05 - time.time()))
            sent = time.time()
            reply = http.post(f"{gateways[i % 2].url}/v1/chat/completions", json=body,
                              headers={"authorization": f"Bearer {key}"})
            assert reply.status_code in (200, 429), reply.text
            if reply.status_code == 200:
                admitted.append((sent, time.time()))

        time.sleep((2 * 0.9 - time.time() % 2) % 2)  # start late in a clock window, where a fixed one restarts
        begin = time.time()
        with ThreadPoolExecutor(40) as pool:
            list(pool.map(one, range(80)))
    # Requests sent and answered within one 2 s span were certainly admitted within it.
    busiest = max(sum(1 for sent, done in admitted if start <= sent and done < start + 2) for start, _ in admitted)
    assert busiest <= 10 and len(admitted) >= 10
