"""Files and Vector Stores through a real gateway (real PostgreSQL + pgvector), via the openai client."""

from __future__ import annotations

import time
from typing import Any

import openai
import orjson
import pytest

from tests.gateway.services.vectorstores.fixtures import DOCUMENTS
from tests.support.configs import sim_config
from tests.support.openapi import validate
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gateway(start_gateway: Any, sim: ServerProcess, postgres_dsn: str) -> Any:
    return start_gateway(sim_config(sim.url, "sim-chat", chain=["cache", "rag"], postgres={"dsn": postgres_dsn}))


@pytest.fixture(scope="module")
def client(gateway: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)


def wait_completed(client: openai.OpenAI, store_id: str, file_id: str) -> Any:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        f = client.vector_stores.files.retrieve(file_id, vector_store_id=store_id)
        if f.status != "in_progress":
            return f
        time.sleep(0.1)
    raise AssertionError("ingestion did not finish")


@pytest.fixture(scope="module")
def store(client: openai.OpenAI) -> str:
    vs = client.vector_stores.create(name="facts", metadata={"team": "qa"})
    for name, data in DOCUMENTS.items():
        uploaded = client.files.create(file=(name, data), purpose="assistants")
        attached = client.vector_stores.files.create(vector_store_id=vs.id, file_id=uploaded.id,
                                                     attributes={"format": name.rsplit(".", 1)[1]})
        assert attached.status == "in_progress"
        assert wait_completed(client, vs.id, uploaded.id).status == "completed"
    return vs.id


@pytest.mark.parametrize(("query", "filename"), [
    ("striped African horses", "zebras.txt"), ("volcano in Sicily", "volcano.md"),
    ("bread made with wild yeast", "bread.html"), ("which comet returns every 76 years", "comet.pdf"),
])
def test_each_format_is_ingested_and_found(client: openai.OpenAI, store: str, query: str, filename: str) -> None:
    raw = client.vector_stores.with_raw_response.search(store, query=query, max_num_results=2)
    page = orjson.loads(raw.content)
    validate(page, "VectorStoreSearchResultsPage")
    assert page["data"][0]["filename"] == filename
    assert page["search_query"] == [query]


def test_search_filters_and_threshold(client: openai.OpenAI, store: str) -> None:
    only_pdf = client.vector_stores.search(store, query="animals", filters={"type": "eq", "key": "format",
                                                                           "value": "pdf"})
    assert [r.filename for r in only_pdf.data] == ["comet.pdf"]
    either = client.vector_stores.search(store, query="animals", filters={"type": "in", "key": "format",
                                                                          "value": ["md", "txt"]})
    assert {r.filename for r in either.data} == {"volcano.md", "zebras.txt"}
    strict = client.vector_stores.search(store, query="striped African horses",
                                         ranking_options={"score_threshold": 0.99})
    assert strict.data == []


def test_store_objects_have_openai_shapes(client: openai.OpenAI, store: str) -> None:
    got = client.vector_stores.with_raw_response.retrieve(store)
    doc = orjson.loads(got.content)
    validate(doc, "VectorStoreObject")
    assert doc["file_counts"]["completed"] == len(DOCUMENTS)
    listed = orjson.loads(client.vector_stores.with_raw_response.list().content)
    validate(listed, "ListVectorStoresResponse")
    files = orjson.loads(client.vector_stores.files.with_raw_response.list(store).content)
    validate(files, "ListVectorStoreFilesResponse")
    uploaded = orjson.loads(client.files.with_raw_response.retrieve(files["data"][0]["id"]).content)
    validate(uploaded, "OpenAIFile")


def test_unsupported_file_fails_ingestion(client: openai.OpenAI, store: str) -> None:
    uploaded = client.files.create(file=("tool.exe", b"MZ\x90\x00"), purpose="assistants")
    client.vector_stores.files.create(vector_store_id=store, file_id=uploaded.id)
    failed = wait_completed(client, store, uploaded.id)
    assert failed.status == "failed" and failed.last_error is not None
    assert failed.last_error.code == "unsupported_file"


def test_delete_store(client: openai.OpenAI) -> None:
    vs = client.vector_stores.create(name="short-lived")
    deleted = client.vector_stores.delete(vs.id)
    assert deleted.deleted
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(vs.id)


def test_detach_and_delete_files(client: openai.OpenAI) -> None:
    vs = client.vector_stores.create(name="pruning")
    keep = client.files.create(file=("keep.txt", b"Otters hold hands while they sleep."), purpose="assistants")
    drop = client.files.create(file=("drop.txt", b"Penguins propose with pebbles."), purpose="assistants")
    for f in (keep, drop):
        client.vector_stores.files.create(vector_store_id=vs.id, file_id=f.id)
        wait_completed(client, vs.id, f.id)
    assert {f.id for f in client.files.list()} >= {keep.id, drop.id}

    detached = client.vector_stores.files.delete(file_id=drop.id, vector_store_id=vs.id)
    assert detached.deleted and detached.object == "vector_store.file.deleted"
    hits = client.vector_stores.search(vector_store_id=vs.id, query="penguins pebbles").data
    assert {h.file_id for h in hits} == {keep.id}  # the detached file's chunks are gone
    assert client.files.retrieve(drop.id).id == drop.id  # detaching does not delete the file

    assert client.files.delete(keep.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(keep.id)
    assert client.vector_stores.search(vector_store_id=vs.id, query="otters").data == []
    with pytest.raises(openai.NotFoundError):
        client.files.delete(keep.id)
