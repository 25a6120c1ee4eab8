"""The vector store service: tenant-scoped operations over a lazily opened, migrated pool."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import psycopg
import psycopg_pool

from gateway.kernel.config.sections.rag import RagSettings
from gateway.kernel.errors import GatewayError, NotFound
from gateway.services.embeddings.base import Embedder
from gateway.services.stores.migrations import migrate
from gateway.services.vectorstores import repo
from gateway.services.vectorstores.chunking import Chunker, Chunking
from gateway.services.vectorstores.errors import StoreUnavailable, mapped_store_errors
from gateway.services.vectorstores.ingest import Progress, embed_and_store, make_chunker, split_file
from gateway.services.vectorstores.objects import Hit, StoreRow, new_file_id, new_store_id
from gateway.services.vectorstores.schema import COMPONENT, MIGRATIONS
from gateway.services.vectorstores.search import (
    build_index,
    chunk_count,
    drop_index,
    search_store,
    search_tuned,
    tuned_session,
)

_STORE_CACHE_S = 2.0
_RETRY_AFTER_S = 5.0
_STORE_CACHE_SIZE = 10_000

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

    from gateway.services.stores.postgres import Postgres


class VectorStoreService:
    def __init__(self, open_postgres: Callable[[], Awaitable[Postgres]], embedder: Embedder,
                 settings: RagSettings, on_failure: Callable[[str, str, str], None] | None = None) -> None:
        self.embedder = embedder
        self.settings = settings
        self._open = open_postgres
        self._on_failure = on_failure  # (store id, file id, reason) of a failed background ingestion
        self._pool: AsyncConnectionPool | None = None
        self._searchers: AsyncConnectionPool | None = None
        self._lock = asyncio.Lock()
        self._chunker: Chunker | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # (tenant, id) -> (expires, row): a store's row only changes when it gets its index or goes away;
        # a stale row costs at most one exact scan, or an empty result for a deleted store.
        self._stores: dict[tuple[str, str], tuple[float, StoreRow]] = {}
        self._down_until = 0.0

    @contextlib.contextmanager
    def _guarded(self) -> Iterator[None]:
        """Map database failures to ``StoreUnavailable``; after one, fail fast for a while instead of
        making every request wait for the connect timeout."""
        if time.monotonic() < self._down_until:
            raise StoreUnavailable("The vector store database is unavailable (recent failure).")
        try:
            with mapped_store_errors():
                yield
        except StoreUnavailable:
            self._down_until = time.monotonic() + _RETRY_AFTER_S
            raise

    async def pool(self) -> AsyncConnectionPool:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                with self._guarded():
                    pg = await self._open()
                    async with pg.pool.connection() as conn:
                        await migrate(conn, COMPONENT, MIGRATIONS)
                self._pool = pg.pool
        return self._pool

    async def _search_pool(self) -> AsyncConnectionPool:
        """A few connections whose sessions are set up for ANN search (``tuned_session``)."""
        if self._searchers is None:
            main = await self.pool()
            setup = tuned_session(self.settings.ef_search)

            async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
                await conn.execute(setup)

            pool = psycopg_pool.AsyncConnectionPool(
                main.conninfo, min_size=1, max_size=4, kwargs={"autocommit": True}, configure=configure, open=False
            )
            await pool.open(wait=True, timeout=10)
            if self._searchers is None:
                self._searchers = pool
            else:
                await pool.close()
        return self._searchers

    @property
    def default_chunking(self) -> Chunking:
        c = self.settings.chunking
        return Chunking(c.max_chunk_size_tokens, c.chunk_overlap_tokens)

    # ---------------------------------------------------------------- files

    async def create_file(self, tenant: str, filename: str, purpose: str, data: bytes) -> tuple[Any, ...]:
        with self._guarded():
            async with (await self.pool()).connection() as conn:
                return await repo.insert_file(conn, (new_file_id(), tenant, filename, purpose, data))

    async def get_file(self, tenant: str, file_id: str) -> tuple[Any, ...]:
        with self._guarded():
            async with (await self.pool()).connection() as conn:
                row = await repo.get_file(conn, tenant, file_id)
        if row is None:
            raise NotFound(f"No such File object: {file_id}", param="file_id")
        return row

    async def file_content(self, tenant: str, file_id: str) -> tuple[str, bytes]:
        """(filename, bytes) of an uploaded file; ``NotFound`` for another tenant's or an unknown id."""
        with self._guarded():
            async with (await self.pool()).connection() as conn:
                found = await repo.file_content(conn, tenant, file_id)
        if found is None:
            raise NotFound(f"No such File object: {file_id}", param="file_id")
        return found

    async def file_slice(self, tenant: str, file_id: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of an uploaded file; ``NotFound`` for another tenant's or an unknown id."""
        with self._guarded():
            async with (await self.pool()).connection() as conn:
                found = await repo.file_slice(conn, tenant, file_id, start, end)
        if found is None:
            raise NotFound(f"No such File object: {file_id}", param="file_id")
        return found

    async def list_files(self, tenant: str, limit: int) -> list[tuple[Any, ...]]:
        with self._guarded():
            async with (await self.pool()).connection() as conn:
                return await repo.list_files(conn, tenant, limit)

    async def delete_file(self, tenant: str, file_id: str) -> None:
        with self._guarded():
            async with (await self.pool()).connection() as conn:
                if not await repo.delete_file(conn, tenant, file_id):
                    raise NotFound(f"No such File object: {file_id}", param="file_id")

    async def detach_file(self, tenant: str, store_id: str, file_id: str) -> None:
        with self._guarded():
            async with (await self.pool()).connection() as conn:
                if not await repo.detach_file(conn, tenant, store_id, file_id):
                    raise NotFound(f"No file {file_id!r} in vector store {store_id!r}.", param="file_id")

    # ---------------------------------------------------------------- stores

    async def create_store(self, tenant: str, name: str, metadata: dict[str, Any]) -> StoreRow:
        store = StoreRow(new_store_id(), tenant, name, metadata, self.embedder.dimensions, repo.now(), repo.now(),
                         0, False)
        with self._guarded():
            async with (await self.pool()).connection() as conn:
                await repo.insert_store(conn, store)
        return store

    async def store(self, tenant: str, store_id: str) -> StoreRow:
        cached = self._stores.get((tenant, store_id))
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        found = await self._store(tenant, store_id)
        if len(self._stores) >= _STORE_CACHE_SIZE:
            self._stores.clear()
        self._stores[(tenant, store_id)] = (time.monotonic() + _STORE_CACHE_S, found)
        return found

    async def _store(self, tenant: str, store_id: str) -> StoreRow:
        with self._guarded():
            async with (await self.pool()).connection() as conn:
                found = await repo.get_store(conn, tenant, store_id)
        if found is None:  # another tenant's store is indistinguishable from a missing one
            raise NotFound(f"No vector store found with id '{store_id}'.", param="vector_store_id")
        return found

    async def stats(self, store: StoreRow) -> tuple[dict[str, int], int]:
        with self._guarded():
            async with (await self.pool()).connection() as conn:
                return await repo.store_stats(conn, store.id)

    async def list_stores(self, tenant: str, limit: int, after: str | None, descending: bool) -> list[StoreRow]:
        with self._guarded():
            async with (await self.pool()).connection() as conn:
                return await repo.list_stores(conn, tenant, limit, after, descending)

    async def delete_store(self, tenant: str, store_id: str) -> None:
        with self._guarded():
            async with (await self.pool()).connection() as conn:
                self._stores.pop((tenant, store_id), None)
                if not await repo.delete_store(conn, tenant, store_id):
                    raise NotFound(f"No vector store found with id '{store_id}'.", param="vector_store_id")
                await drop_index(conn, store_id)

    async def versions(self, tenant: str, store_ids: list[str]) -> dict[str, int]:
        with self._guarded():
            async with (await self.pool()).connection() as conn:
                return await repo.versions(conn, tenant, store_ids)

    # ---------------------------------------------------------------- store files

    async def add_file(self, tenant: str, store_id: str, file_id: str, chunking: Chunking,
                       attributes: dict[str, Any] | None) -> tuple[Any, ...]:
        """Attach and start ingesting in the background; poll ``store_file`` for the status."""
        store = await self.store(tenant, store_id)
        await self.get_file(tenant, file_id)
        with self._guarded():
            async with (await self.pool()).connection() as conn:
                row = await repo.upsert_store_file(conn, tenant, store_id, file_id, chunking.describe(), attributes)
        task = asyncio.create_task(self._ingest_quietly(store, file_id, chunking))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return row

    async def ingest(self, store: StoreRow, file_id: str, chunking: Chunking, progress: Progress | None = None,
                     *, attach: bool = False) -> int:
        """Chunk, embed and store one file; returns the chunk count (0 and status ``failed`` on error)."""
        pool = await self.pool()
        async with pool.connection() as conn:
            if attach:
                await repo.upsert_store_file(conn, store.tenant, store.id, file_id, chunking.describe(), None)
            found = await repo.file_content(conn, store.tenant, file_id)
            try:
                if found is None:
                    raise NotFound(f"No such File object: {file_id}")
                chunks = await split_file(self._get_chunker(), found[0], found[1], chunking)
                await embed_and_store(conn, self.embedder, store, file_id, chunks, progress)
            except GatewayError as err:
                await repo.finish_store_file(conn, store.id, file_id, 0, _error_of(err))
                return 0
            await repo.finish_store_file(conn, store.id, file_id, sum(len(c.encode()) for c in chunks), None)
            await self._maybe_index(conn, store)
        return len(chunks)

    async def _ingest_quietly(self, store: StoreRow, file_id: str, chunking: Chunking) -> None:
        """Background ingestion: whatever fails marks the file ``failed`` with ``last_error``, is logged
        and counted; nothing stays ``in_progress`` because an error was swallowed."""
        try:
            await self.ingest(store, file_id, chunking)
        except (GatewayError, psycopg.Error, psycopg_pool.PoolTimeout, OSError) as exc:
            reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            if self._on_failure is not None:
                self._on_failure(store.id, file_id, reason)
            with contextlib.suppress(GatewayError, psycopg.Error, psycopg_pool.PoolTimeout, OSError):
                async with (await self.pool()).connection() as conn:
                    await repo.finish_store_file(conn, store.id, file_id, 0,
                                                 {"code": "server_error", "message": "Ingestion failed: " + reason})

    async def _maybe_index(self, conn: Any, store: StoreRow) -> None:
        current = await repo.get_store(conn, store.tenant, store.id)
        if current is not None and not current.indexed:
            if await chunk_count(conn, store.id) >= self.settings.exact_below:
                await build_index(conn, current)

    async def store_file(self, tenant: str, store_id: str, file_id: str) -> tuple[Any, ...]:
        with self._guarded():
            async with (await self.pool()).connection() as conn:
                row = await repo.get_store_file(conn, tenant, store_id, file_id)
        if row is None:
            raise NotFound(f"No file {file_id} in vector store {store_id}.", param="file_id")
        return row

    async def store_files(self, tenant: str, store_id: str, limit: int) -> list[tuple[Any, ...]]:
        await self.store(tenant, store_id)
        with self._guarded():
            async with (await self.pool()).connection() as conn:
                return await repo.list_store_files(conn, tenant, store_id, limit)

    # ---------------------------------------------------------------- search

    async def search(self, store: StoreRow, vector: npt.NDArray[np.float32], k: int, filters: Any = None,
                     threshold: float = 0.0) -> list[Hit]:
        with self._guarded():
            if filters is None and store.indexed:
                async with (await self._search_pool()).connection() as conn:
                    hits = await search_tuned(conn, store, vector, k)
            else:
                async with (await self.pool()).connection() as conn:
                    hits = await search_store(conn, store, vector, k, filters, self.settings.ef_search)
        return [h for h in hits if threshold <= 0 or h.score >= threshold]

    def _get_chunker(self) -> Chunker:
        if self._chunker is None:
            self._chunker = make_chunker()
        return self._chunker

    async def aclose(self) -> None:
        if self._searchers is not None:
            await self._searchers.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _error_of(err: GatewayError) -> dict[str, str]:
    code = "unsupported_file" if err.code == "unsupported_file" else "server_error"
    return {"code": code, "message": err.message}

