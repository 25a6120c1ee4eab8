"""Build the cache stage from settings: pick the store, the semantic index and the embedder."""

from __future__ import annotations

from gateway.kernel.config.sections.cache import CacheSettings
from gateway.services.bundle import Services
from middleware.cache.metrics import CacheMetrics
from middleware.cache.probe import Corpus, SemanticCache
from middleware.cache.semantic import MemoryIndex, PgIndex, SemanticIndex
from middleware.cache.stage import CacheStage
from middleware.cache.store import CacheStore, MemoryStore, RedisStore, TieredStore


def make_stage(services: Services) -> CacheStage:
    settings = services.settings.cache
    metrics = CacheMetrics(services.metrics.registry)
    semantic = _semantic(services, settings, metrics) if _semantic_wanted(settings) else None
    corpus = Corpus(services.vector_stores, services.settings.rag)
    return CacheStage(settings, _store(services, settings), corpus, semantic, metrics)


def _store(services: Services, settings: CacheSettings) -> CacheStore:
    if settings.backend == "memory":
        return MemoryStore(settings.max_entries)
    client = services.redis
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


def _semantic(services: Services, settings: CacheSettings, metrics: CacheMetrics) -> SemanticCache:
    embedder = services.embedder
    index: SemanticIndex
    use_pg = settings.semantic_index == "pgvector" or (
        settings.semantic_index == "auto" and services.settings.postgres.dsn is not None)
    if use_pg:
        index = PgIndex(services.vector_stores)
    else:
        index = MemoryIndex(settings.max_entries, settings.semantic_max_per_scope)
    return SemanticCache(embedder, index, settings.semantic_threshold, metrics)
