"""The cache through real gateway processes, a real simulator and a real Redis, via the openai client."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.conftest import SimFactory
from tests.support.configs import sim_config
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.integration
MESSAGES: list[Any] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi"}]


@pytest.fixture(scope="module")
def sim(start_sim: SimFactory) -> ServerProcess:
    """This module's own: the shared simulator's request log (the last 200) fills with other gateways' health
    probes, and the tests count the chat requests in it."""
    return start_sim("--name", "cache")


@pytest.fixture(scope="module")
def gateway(start_gateway: Any, sim: ServerProcess, redis_url: str) -> Any:
    config = sim_config(sim.url, "sim-chat", chain=["cache"], redis={"url": redis_url})
    return start_gateway(config)


def client(gw: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)


def sim_requests(sim: ServerProcess) -> list[dict[str, Any]]:
    """Chat requests the simulator received (health probes also land there)."""
    data: list[dict[str, Any]] = httpx.get(sim.url + "/_sim/requests").json()["data"]
    return [r for r in data if r["method"] == "POST" and r["path"].endswith("/chat/completions")]


def ask(gw: ServerProcess, content: str, **extra: Any) -> Any:
    messages = [MESSAGES[0], {"role": "user", "content": content}]
    return client(gw).chat.completions.with_raw_response.create(
        model="sim-chat", messages=messages, temperature=0, **extra)


def test_miss_then_hit_serves_the_same_answer_without_upstream(gateway: ServerProcess, sim: ServerProcess) -> None:
    first = ask(gateway, "cache me 1")
    before = len(sim_requests(sim))
    second = ask(gateway, "cache me 1", user="someone-else")  # `user` does not change the answer
    assert first.headers["x-llmops-cache"] == "miss"
    assert second.headers["x-llmops-cache"] == "hit"
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert len(sim_requests(sim)) == before


def test_any_answer_field_changes_the_key(gateway: ServerProcess) -> None:
    ask(gateway, "cache me 2")
    assert ask(gateway, "cache me 2", max_tokens=7).headers["x-llmops-cache"] == "miss"
    system = client(gateway).chat.completions.with_raw_response.create(
        model="sim-chat", temperature=0,
        messages=[{"role": "system", "content": "Be verbose."}, {"role": "user", "content": "cache me 2"}])
    assert system.headers["x-llmops-cache"] == "miss"


def test_sampled_answers_and_opt_outs_bypass(gateway: ServerProcess) -> None:
    c = client(gateway).chat.completions
    sampled = c.with_raw_response.create(model="sim-chat", messages=MESSAGES, temperature=0.7)
    assert sampled.headers["x-llmops-cache"] == "bypass"
    ask(gateway, "cache me 3")
    no_store = ask(gateway, "cache me 3", extra_headers={"Cache-Control": "no-store"})
    ext = ask(gateway, "cache me 3", extra_body={"llmops": {"cache": "bypass"}})
    assert no_store.headers["x-llmops-cache"] == "bypass"
    assert ext.headers["x-llmops-cache"] == "bypass"


def test_extension_field_is_not_forwarded(gateway: ServerProcess, sim: ServerProcess) -> None:
    ask(gateway, "cache me 4", extra_body={"llmops": {"cache": "bypass"}})
    last = sim_requests(sim)[-1]
    assert "llmops" not in last["body"]


def test_stream_is_cached_once_complete_and_replayed(gateway: ServerProcess, sim: ServerProcess) -> None:
    c = client(gateway).chat.completions
    messages: Any = [{"role": "user", "content": "stream me please"}]
    with c.with_streaming_response.create(model="sim-chat", messages=messages, temperature=0, stream=True) as r:
        assert r.headers["x-llmops-cache"] == "miss"
        live = "".join(ch.choices[0].delta.content or "" for ch in r.parse() if ch.choices)
    before = len(sim_requests(sim))
    with c.with_streaming_response.create(model="sim-chat", messages=messages, temperature=0, stream=True) as r:
        assert r.headers["x-llmops-cache"] == "hit"
        replayed = "".join(ch.choices[0].delta.content or "" for ch in r.parse() if ch.choices)
    plain = c.with_raw_response.create(model="sim-chat", messages=messages, temperature=0)
    assert replayed == live
    assert plain.headers["x-llmops-cache"] == "hit"
    assert plain.parse().choices[0].message.content == live
    assert len(sim_requests(sim)) == before


def test_replicas_share_entries_through_redis(start_gateway: Any, gateway: ServerProcess, sim: ServerProcess,
                                              redis_url: str) -> None:
    ask(gateway, "shared between replicas")
    other = start_gateway(sim_config(sim.url, "sim-chat", chain=["cache"], redis={"url": redis_url}))
    assert ask(other, "shared between replicas").headers["x-llmops-cache"] == "hit"


def test_redis_down_bypasses_and_never_fails(start_gateway: Any, sim: ServerProcess, tmp_path: Any) -> None:
    dead = f"unix://{tmp_path}/nothing.sock"
    gw = start_gateway(sim_config(sim.url, "sim-chat", chain=["cache"], redis={"url": dead}))
    first = ask(gw, "redis is down")
    assert first.http_response.status_code == 200
    assert first.headers["x-llmops-cache"] == "bypass"
    metrics = httpx.get(gw.url + "/metrics").text
    assert "llmops_cache_errors_total" in metrics


def test_embeddings_are_cached(start_gateway: Any, sim: ServerProcess) -> None:
    gw = start_gateway(sim_config(sim.url, "sim-embed", chain=["cache"]))
    c = client(gw).embeddings
    first = c.with_raw_response.create(model="sim-embed", input="cache this vector")
    second = c.with_raw_response.create(model="sim-embed", input="cache this vector")
    assert (first.headers["x-llmops-cache"], second.headers["x-llmops-cache"]) == ("miss", "hit")
    assert second.parse().data[0].embedding == first.parse().data[0].embedding
