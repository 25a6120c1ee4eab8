"""The semantic cache through a real gateway, with the in-process index and with pgvector."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.support.configs import sim_config
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["memory", "pgvector"])
def gateway(request: pytest.FixtureRequest, start_gateway: Any, sim: ServerProcess) -> Any:
    extra: dict[str, Any] = {}
    if request.param == "pgvector":
        extra["postgres"] = {"dsn": request.getfixturevalue("postgres_dsn")}
    cache = {"routes": {"chat": {"semantic": True}}, "semantic_index": request.param}
    return start_gateway(sim_config(sim.url, "sim-chat", chain=["cache"], cache=cache, **extra))


def ask(gw: ServerProcess, content: str) -> Any:
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)
    return c.chat.completions.with_raw_response.create(
        model="sim-chat", temperature=0,
        messages=[{"role": "system", "content": "You convert currencies."}, {"role": "user", "content": content}])


def test_paraphrase_hits_and_swapped_values_miss(gateway: ServerProcess) -> None:
    first = ask(gateway, "Convert 10 USD to EUR")
    assert first.headers["x-llmops-cache"] == "miss"
    para = ask(gateway, "convert 10 USD to EUR please")
    assert para.headers["x-llmops-cache"] == "semantic-hit"
    assert float(para.headers["x-llmops-cache-similarity"]) >= 0.92
    assert para.parse().choices[0].message.content == first.parse().choices[0].message.content
    swapped = ask(gateway, "Convert 10 EUR to USD")
    assert swapped.headers["x-llmops-cache"] == "miss"
    assert ask(gateway, "Convert 10 USD to EUR").headers["x-llmops-cache"] == "hit"


def test_different_system_prompt_is_another_scope(gateway: ServerProcess) -> None:
    ask(gateway, "Convert 5 GBP to JPY")
    c = openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
    other = c.chat.completions.with_raw_response.create(
        model="sim-chat", temperature=0,
        messages=[{"role": "system", "content": "Answer in French."},
                  {"role": "user", "content": "convert 5 GBP to JPY please"}])
    assert other.headers["x-llmops-cache"] == "miss"
