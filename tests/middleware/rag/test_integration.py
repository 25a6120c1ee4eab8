"""Retrieval augmentation and tenant isolation through a real gateway with static keys for two tenants,
real PostgreSQL + pgvector, real Redis, and the simulator's record of what it received."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.gateway.services.vectorstores.fixtures import DOCUMENTS
from tests.support.configs import sim_config
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.integration
KEYS = {"acme": "sk-test-acme-0123456789", "globex": "sk-test-globex-0123456789"}


@pytest.fixture(scope="module")
def gateway(start_gateway: Any, sim: ServerProcess, postgres_dsn: str, redis_url: str) -> Any:
    static = [{"key": key, "key_id": f"key-{tenant}", "tenant": tenant} for tenant, key in KEYS.items()]
    config = sim_config(sim.url, "sim-chat", chain=["authn", "cache", "rag"], postgres={"dsn": postgres_dsn},
                        redis={"url": redis_url}, auth={"static_keys": static})
    return start_gateway(config)


def client(gw: ServerProcess, tenant: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=KEYS[tenant], max_retries=0)


def add_file(c: openai.OpenAI, store_id: str, name: str, data: bytes) -> str:
    uploaded = c.files.create(file=(name, data), purpose="assistants")
    c.vector_stores.files.create(vector_store_id=store_id, file_id=uploaded.id)
    deadline = time.monotonic() + 60
    while c.vector_stores.files.retrieve(uploaded.id, vector_store_id=store_id).status == "in_progress":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return uploaded.id


@pytest.fixture(scope="module")
def acme_store(gateway: ServerProcess) -> str:
    c = client(gateway, "acme")
    store = c.vector_stores.create(name="acme-docs").id
    add_file(c, store, "zebras.txt", DOCUMENTS["zebras.txt"])
    add_file(c, store, "volcano.md", DOCUMENTS["volcano.md"])
    return store


def last_sim_body(sim: ServerProcess) -> dict[str, Any]:
    """The last chat request the simulator received (health probes also land there)."""
    chats = [r for r in httpx.get(sim.url + "/_sim/requests").json()["data"]
             if r["method"] == "POST" and r["path"].endswith("/chat/completions")]
    body: dict[str, Any] = chats[-1]["body"]
    return body


def ask(gw: ServerProcess, tenant: str, store: str, question: str, **extra: Any) -> Any:
    tools: Any = [{"type": "file_search", "vector_store_ids": [store]}]
    return client(gw, tenant).chat.completions.with_raw_response.create(
        model="sim-chat", messages=[{"role": "user", "content": question}], temperature=0, tools=tools, **extra)


def test_augmentation_as_the_backend_receives_it(gateway: ServerProcess, sim: ServerProcess,
                                                 acme_store: str) -> None:
    raw = ask(gateway, "acme", acme_store, "What coat do zebras have?")
    sent = last_sim_body(sim)
    assert "tools" not in sent  # the gateway served file_search itself
    system, user = sent["messages"][0], sent["messages"][1]
    assert system["role"] == "system" and "DATA, not instructions" in system["content"]
    assert "black-and-white striped" in system["content"] and 'chunk_id="file-' in system["content"]
    assert user == {"role": "user", "content": "What coat do zebras have?"}
    assert raw.headers["x-llmops-rag"] == "augmented"
    cited = raw.headers["x-llmops-citations"].split(",")
    body = orjson.loads(raw.content)
    assert [c["chunk_id"] for c in body["llmops"]["citations"]] == cited
    assert body["llmops"]["citations"][0]["filename"] == "zebras.txt"
    assert raw.parse().choices[0].message.content  # still a valid ChatCompletion for the client


def test_stream_is_augmented_with_citations_in_the_header(gateway: ServerProcess, sim: ServerProcess,
                                                          acme_store: str) -> None:
    c = client(gateway, "acme").chat.completions
    tools: Any = [{"type": "file_search", "vector_store_ids": [acme_store]}]
    with c.with_streaming_response.create(model="sim-chat", stream=True, tools=tools,
                                          messages=[{"role": "user", "content": "Where is Etna?"}]) as r:
        assert r.headers["x-llmops-rag"] == "augmented"
        assert r.headers["x-llmops-citations"]
        assert "".join(ch.choices[0].delta.content or "" for ch in r.parse() if ch.choices)
    assert "Sicily" in last_sim_body(sim)["messages"][0]["content"]


def test_extension_field_names_stores_too(gateway: ServerProcess, sim: ServerProcess, acme_store: str) -> None:
    raw = client(gateway, "acme").chat.completions.with_raw_response.create(
        model="sim-chat", messages=[{"role": "user", "content": "Tell me about Etna"}],
        extra_body={"llmops": {"vector_store_ids": [acme_store]}})
    assert raw.headers["x-llmops-rag"] == "augmented"
    assert "llmops" not in last_sim_body(sim)


def test_other_tenant_can_not_see_or_use_the_store(gateway: ServerProcess, acme_store: str) -> None:
    globex = client(gateway, "globex")
    with pytest.raises(openai.NotFoundError):
        globex.vector_stores.retrieve(acme_store)
    with pytest.raises(openai.NotFoundError):
        globex.vector_stores.search(acme_store, query="zebras")
    assert acme_store not in [s.id for s in globex.vector_stores.list()]
    with pytest.raises(openai.NotFoundError):
        ask(gateway, "globex", acme_store, "What coat do zebras have?")
    acme_file = client(gateway, "acme").vector_stores.files.list(acme_store).data[0].id
    with pytest.raises(openai.NotFoundError):
        globex.files.retrieve(acme_file)


def test_tenants_never_share_cache_entries(gateway: ServerProcess) -> None:
    def plain(tenant: str) -> Any:
        return client(gateway, tenant).chat.completions.with_raw_response.create(
            model="sim-chat", messages=[{"role": "user", "content": "same prompt for everyone"}], temperature=0)

    assert plain("acme").headers["x-llmops-cache"] == "miss"
    assert plain("acme").headers["x-llmops-cache"] == "hit"
    assert plain("globex").headers["x-llmops-cache"] == "miss"


def test_new_files_change_the_corpus_version(gateway: ServerProcess, acme_store: str) -> None:
    question = "Is there bread in the corpus?"
    assert ask(gateway, "acme", acme_store, question).headers["x-llmops-cache"] == "miss"
    assert ask(gateway, "acme", acme_store, question).headers["x-llmops-cache"] == "hit"
    add_file(client(gateway, "acme"), acme_store, "bread.html", DOCUMENTS["bread.html"])
    assert ask(gateway, "acme", acme_store, question).headers["x-llmops-cache"] == "miss"


def test_postgres_down_answers_without_augmentation(start_gateway: Any, sim: ServerProcess, tmp_path: Any) -> None:
    dead = f"postgresql:///none?host={tmp_path}"
    gw = start_gateway(sim_config(sim.url, "sim-chat", chain=["rag"],
                                  postgres={"dsn": dead, "connect_timeout_s": 0.5}))
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)
    tools: Any = [{"type": "file_search", "vector_store_ids": ["vs_" + "1" * 32]}]
    for _ in range(2):
        started = time.monotonic()
        raw = c.chat.completions.with_raw_response.create(
            model="sim-chat", messages=[{"role": "user", "content": "hello?"}], tools=tools)
        assert raw.http_response.status_code == 200
        assert raw.headers["x-llmops-rag"] == "unavailable"
        assert "tools" not in last_sim_body(sim)
    assert time.monotonic() - started < 0.5  # the second request did not wait for a connect timeout
