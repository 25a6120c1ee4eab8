"""Semantic indexes: nearest stored prompt within one exact scope (see ``keys.semantic_scope``).

Because the scope hash already contains the tenant, the model, every other field and the guard
signature, a search never looks beyond prompts that differ only in wording.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt
import psycopg
import psycopg_pool

from gateway.kernel.errors import GatewayError
from gateway.services.vectorstores.search import vector_text
from middleware.cache.store import CacheUnavailable

if TYPE_CHECKING:
    from gateway.services.vectorstores.service import VectorStoreService

Vector = npt.NDArray[np.float32]
_STORE_ERRORS = (psycopg.Error, psycopg_pool.PoolTimeout, OSError, GatewayError)


class SemanticIndex(Protocol):
    async def nearest(self, scope: str, vector: Vector) -> tuple[str, float] | None:
        """(entry key, cosine similarity) of the closest live prompt in ``scope``."""
        ...

    async def add(self, scope: str, key: str, vector: Vector, ttl_s: int) -> None: ...


class MemoryIndex:
    def __init__(self, max_scopes: int, max_per_scope: int) -> None:
        self._scopes: OrderedDict[str, deque[tuple[str, Vector, float]]] = OrderedDict()
        self._max_scopes = max_scopes
        self._max_per_scope = max_per_scope

    async def nearest(self, scope: str, vector: Vector) -> tuple[str, float] | None:
        entries = self._scopes.get(scope)
        if not entries:
            return None
        now = time.monotonic()
        live = [e for e in entries if e[2] > now]
        if not live:
            return None
        scores = np.stack([e[1] for e in live]) @ vector
        best = int(np.argmax(scores))
        return live[best][0], float(scores[best])

    async def add(self, scope: str, key: str, vector: Vector, ttl_s: int) -> None:
        entries = self._scopes.get(scope)
        if entries is None:
            entries = self._scopes[scope] = deque(maxlen=self._max_per_scope)
        self._scopes.move_to_end(scope)
        entries.append((key, vector, time.monotonic() + ttl_s))
        while len(self._scopes) > self._max_scopes:
            self._scopes.popitem(last=False)


class PgIndex:
    """Vectors in pgvector (shared by replicas); an exact scan over the scope's few rows."""

    def __init__(self, service: VectorStoreService) -> None:
        self._service = service

    async def nearest(self, scope: str, vector: Vector) -> tuple[str, float] | None:
        try:
            async with (await self._service.pool()).connection() as conn:
                cur = await conn.execute(
                    "SELECT entry_key, 1 - (embedding <=> %s::vector) FROM llmops_semantic_cache "
                    "WHERE scope = %s AND expires_at > now() ORDER BY embedding <=> %s::vector LIMIT 1",
                    (vector_text(vector), scope, vector_text(vector)))
                row = await cur.fetchone()
        except _STORE_ERRORS as exc:
            raise CacheUnavailable(type(exc).__name__) from None
        return (str(row[0]), float(row[1])) if row else None

    async def add(self, scope: str, key: str, vector: Vector, ttl_s: int) -> None:
        try:
            async with (await self._service.pool()).connection() as conn:
                await conn.execute("DELETE FROM llmops_semantic_cache WHERE scope = %s AND expires_at < now()",
                                   (scope,))
                await conn.execute(
                    "INSERT INTO llmops_semantic_cache (scope, entry_key, embedding, expires_at) "
                    "VALUES (%s, %s, %s::vector, now() + make_interval(secs => %s)) ON CONFLICT (scope, entry_key) "
                    "DO UPDATE SET embedding = EXCLUDED.embedding, expires_at = EXCLUDED.expires_at",
                    (scope, key, vector_text(vector), ttl_s))
        except _STORE_ERRORS as exc:
            raise CacheUnavailable(type(exc).__name__) from None



