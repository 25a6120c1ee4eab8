"""Inputs the cache key needs from elsewhere: the retrieval corpus version, and the semantic probe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.kernel.config.sections.rag import RagSettings
from gateway.kernel.context import RequestContext, tenant_of
from gateway.services.embeddings.base import Embedder, EmbeddingError
from middleware.cache.guard import signature
from middleware.cache.keys import semantic_scope
from middleware.cache.metrics import CacheMetrics
from middleware.cache.rules import Rule
from middleware.cache.semantic import SemanticIndex, Vector
from middleware.cache.store import CacheUnavailable
from middleware.rag.request import last_user_text, requested_stores

if TYPE_CHECKING:
    from gateway.services.vectorstores.service import VectorStoreService


class Corpus:
    """``"vs_a:3,vs_b:7"`` for the stores a request retrieves from: new files → new keys."""

    def __init__(self, service: VectorStoreService, settings: RagSettings) -> None:
        self._service = service
        self._settings = settings

    async def version(self, ctx: RequestContext) -> str:
        if ctx.route != "chat":
            return ""
        ids = requested_stores(ctx, self._settings)
        if not ids:
            return ""
        versions = await self._service.versions(tenant_of(ctx.principal), list(ids))
        return ",".join(f"{i}:{versions.get(i, -1)}" for i in ids)


@dataclass(slots=True)
class Probe:
    scope: str
    vector: Vector
    key: str | None = None
    similarity: float = 0.0


class SemanticCache:
    def __init__(self, embedder: Embedder, index: SemanticIndex, threshold: float, metrics: CacheMetrics) -> None:
        self._embedder = embedder
        self._index = index
        self._threshold = threshold
        self._metrics = metrics

    async def probe(self, ctx: RequestContext, corpus: str, rule: Rule) -> Probe | None:
        """``None`` when the request has no plain-text last user turn or the embedder/index failed."""
        text = last_user_text(ctx.body)
        if not text:
            return None
        scope = semantic_scope(tenant_of(ctx.principal), ctx.route, ctx.model, corpus, ctx.body, signature(text))
        try:
            vector = (await self._embedder.embed([text]))[0]
            found = await self._index.nearest(scope, vector)
        except (EmbeddingError, CacheUnavailable) as exc:
            self._metrics.error("semantic", "get", exc)
            return None
        probe = Probe(scope, vector)
        if found is not None and found[1] >= self._threshold:
            probe.key, probe.similarity = found
        return probe

    async def remember(self, probe: Probe, key: str, ttl_s: int) -> None:
        try:
            await self._index.add(probe.scope, key, probe.vector, ttl_s)
        except CacheUnavailable as exc:
            self._metrics.error("semantic", "set", exc)
