"""Build the cache stage from settings: pick the store, the semantic index and the embedder."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.kernel.config.sections.cache import CacheSettings
from gateway.services.embeddings.base import EMBEDDER
from middleware.cache.metrics import CacheMetrics
from middleware.cache.probe import Corpus, SemanticCache
from middleware.cache.semantic import MemoryIndex, PgIndex, SemanticIndex
from middleware.cache.stage import CacheStage
from middleware.cache.store import CacheStore, MemoryStore, RedisStore, TieredStore

if TYPE_CHECKING:
    from gateway.runtime import Runtime


def make_stage(runtime: Runtime) -> CacheStage:
    settings = runtime.settings.cache
    metrics = CacheMetrics(runtime.metrics.registry)
    semantic = _semantic(runtime, settings, metrics) if _semantic_wanted(settings) else None
    return CacheStage(settings, _store(runtime, settings), Corpus(runtime, runtime.settings.rag), semantic, metrics)


def _store(runtime: Runtime, settings: CacheSettings) -> CacheStore:
    if settings.backend == "memory":
        return MemoryStore(settings.max_entries)
    client = runtime.redis()
    if client is None:
        if settings.backend == "redis":
            raise RuntimeError("cache.backend is 'redis' but redis.url is not set")
        return MemoryStore(settings.max_entries)
    shared = RedisStore(client)
    if settings.local_ttl_s == 0:
        return shared
    return TieredStore(MemoryStore(settings.local_max_entries), shared, settings.local_ttl_s)


def _semantic_wanted(settings: CacheSettings) -> bool:
    rules = [*settings.routes.values(), *settings.keys.values(), *settings.tenants.values()]
    return settings.semantic or any(r.semantic for r in rules)


def _semantic(runtime: Runtime, settings: CacheSettings, metrics: CacheMetrics) -> SemanticCache:
    embedder = runtime.lookup(EMBEDDER)
    if embedder is None:
        raise RuntimeError("cache: the semantic cache needs the embeddings feature")
    index: SemanticIndex
    use_pg = settings.semantic_index == "pgvector" or (
        settings.semantic_index == "auto" and runtime.settings.postgres.dsn is not None)
    if use_pg:
        from gateway.services.vectorstores.service import VECTOR_STORES

        index = PgIndex(runtime.require(VECTOR_STORES))
    else:
        index = MemoryIndex(settings.max_entries, settings.semantic_max_per_scope)
    return SemanticCache(embedder, index, settings.semantic_threshold, metrics)
