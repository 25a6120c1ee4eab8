"""Search against real PostgreSQL + pgvector: the per-store partial HNSW index, filters, tenants."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from gateway.kernel.config.sections.rag import RagSettings
from gateway.kernel.config.sections.stores import PostgresSettings
from gateway.kernel.errors import NotFound
from gateway.services.stores.postgres import Postgres
from gateway.services.vectorstores import repo
from gateway.services.vectorstores.objects import StoreRow
from gateway.services.vectorstores.search import build_index, copy_chunks, search_store
from gateway.services.vectorstores.service import VectorStoreService

pytestmark = pytest.mark.integration
DIMS = 384


class FixedEmbedder:
    name, dimensions = "fixed", DIMS

    async def embed(self, texts: Any) -> Any:
        raise AssertionError("not used")

    async def aclose(self) -> None:
        return None


@pytest_asyncio.fixture(loop_scope="session")
async def service(postgres_dsn: str) -> AsyncIterator[VectorStoreService]:
    pg = await Postgres.open(PostgresSettings(dsn=postgres_dsn))

    async def opened() -> Postgres:
        return pg

    svc = VectorStoreService(opened, FixedEmbedder(), RagSettings(ef_search=100))
    yield svc
    await svc.aclose()
    await pg.aclose()


def unit(rows: Any) -> Any:
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def clustered(n: int, seed: int) -> Any:
    """Topic clusters, like real embeddings (uniform random points are a pathological case for ANN)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((max(1, n // 100), DIMS))
    return unit(centers[rng.integers(0, len(centers), n)] + 0.6 * rng.standard_normal((n, DIMS)))


async def filled(service: VectorStoreService, tenant: str, n: int, seed: int) -> tuple[StoreRow, Any]:
    store = await service.create_store(tenant, f"s{seed}", {})
    vectors = clustered(n, seed)
    async with (await service.pool()).connection() as conn:
        file_id = (await repo.insert_file(conn, (f"file-{seed}{tenant}", tenant, "f.txt", "assistants", b"x")))[0]
        await repo.upsert_store_file(conn, tenant, store.id, file_id, {}, {"half": "even"})
        await copy_chunks(conn, store, file_id, [f"chunk {i}" for i in range(n)], vectors)
    return store, vectors


@pytest.mark.asyncio(loop_scope="session")
async def test_indexed_store_matches_exact_search(service: VectorStoreService) -> None:
    store, vectors = await filled(service, "acme", 3000, seed=1)
    async with (await service.pool()).connection() as conn:
        await build_index(conn, store)
        indexed = await repo.get_store(conn, "acme", store.id)
        assert indexed is not None and indexed.indexed
        queries = unit(vectors[:20] + 0.3 * np.random.default_rng(7).standard_normal((20, DIMS)))
        recall = []
        for q in queries:
            # uniform random vectors are HNSW's worst case: search wide so the check is about correctness
            hits = await search_store(conn, indexed, q, 10, None, 400)
            exact = set(np.argsort(-(vectors @ q))[:10].tolist())
            recall.append(len({h.seq for h in hits} & exact) / 10)
        plan = await conn.execute(
            f"EXPLAIN SELECT seq FROM llmops_chunks WHERE store_id = '{store.id}' "
            f"ORDER BY embedding::vector({DIMS}) <=> %s::vector({DIMS}) LIMIT 10", (str(queries[0].tolist()),))
        assert "hnsw" in str(await plan.fetchall())
    assert np.mean(recall) >= 0.98


@pytest.mark.asyncio(loop_scope="session")
async def test_filtered_ann_falls_back_to_exact_when_too_few_survive(service: VectorStoreService) -> None:
    store, vectors = await filled(service, "acme", 500, seed=2)
    async with (await service.pool()).connection() as conn:
        await build_index(conn, store)
        # a second file whose one chunk is far from the query: the over-fetched ANN slice misses it
        await repo.insert_file(conn, ("file-rare", "acme", "rare.txt", "assistants", b"x"))
        await repo.upsert_store_file(conn, "acme", store.id, "file-rare", {}, {"half": "odd"})
        current = await repo.get_store(conn, "acme", store.id)
        assert current is not None
        q = vectors[0]
        await copy_chunks(conn, current, "file-rare", ["rare"], unit([-q]))
        hits = await search_store(conn, current, q, 1, {"type": "eq", "key": "half", "value": "odd"}, 40)
    assert [h.file_id for h in hits] == ["file-rare"]


@pytest.mark.asyncio(loop_scope="session")
async def test_stores_and_files_are_scoped_by_tenant(service: VectorStoreService) -> None:
    store, _ = await filled(service, "acme", 5, seed=3)
    with pytest.raises(NotFound):
        await service.store("globex", store.id)
    with pytest.raises(NotFound):
        await service.get_file("globex", "file-3acme")
    with pytest.raises(NotFound):
        await service.delete_store("globex", store.id)
    assert await service.versions("globex", [store.id]) == {}
    assert store.id not in [s.id for s in await service.list_stores("globex", 100, None, True)]
    assert store.id in [s.id for s in await service.list_stores("acme", 100, None, True)]


@pytest.mark.asyncio(loop_scope="session")
async def test_the_tuned_search_session_gives_the_same_hits_in_one_round_trip(service: VectorStoreService) -> None:
    store, vectors = await filled(service, "acme", 1500, seed=4)
    async with (await service.pool()).connection() as conn:
        await build_index(conn, store)
        indexed = await repo.get_store(conn, "acme", store.id)
        assert indexed is not None and indexed.indexed
        q = vectors[7]
        reference = await search_store(conn, indexed, q, 5, None, 400)
    fast = await service.search(indexed, q, 5)
    assert [h.seq for h in fast] == [h.seq for h in reference]
    assert fast[0].seq == 7 and fast[0].score == pytest.approx(1.0, abs=1e-4)
