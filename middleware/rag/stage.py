"""The "rag" stage: retrieve for the last user turn, inject, cite out of band.

Headers: ``x-llmops-rag: augmented|none|unavailable`` and ``x-llmops-citations: <chunk ids>``; the
JSON body gains ``llmops.citations`` (streams carry the header only). On ``/v1/responses`` the
citations are OpenAI's own: a ``file_search_call`` item and ``file_citation`` annotations
(``middleware/rag/responses.py``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import Counter

from gateway.kernel.chain import Handler
from gateway.kernel.config.sections.rag import RagSettings
from gateway.kernel.context import Reply, RequestContext, tenant_of
from gateway.kernel.errors import ServiceOverloaded
from gateway.kernel.responses import FILE_SEARCH
from gateway.kernel.sse import sse_events
from gateway.services.embeddings.base import EmbeddingError
from gateway.services.policy.gate import PolicyGate
from gateway.services.vectorstores.errors import StoreUnavailable
from gateway.services.vectorstores.objects import Hit, StoreRow
from gateway.services.vectorstores.service import VectorStoreService
from middleware.rag.inject import citation_header, citations, context_message, insert_before_last_user, with_citations
from middleware.rag.request import last_user_text, requested_stores, strip_file_search
from middleware.rag.responses import asks_file_search, found, inject, query_of

if TYPE_CHECKING:
    from gateway.services.bundle import Services

RAG_HEADER = "x-llmops-rag"
CITATIONS_HEADER = "x-llmops-citations"


class RagStage:
    name = "rag"

    def __init__(self, settings: RagSettings, service: VectorStoreService, gate: PolicyGate, outcomes: Counter) -> None:
        self._settings = settings
        self._service = service
        self._gate = gate
        self._outcomes = outcomes

    async def __call__(self, ctx: RequestContext, call_next: Handler) -> Reply:
        if ctx.route == "responses":
            return await self._responses(ctx, call_next)
        if ctx.route != "chat":
            return await call_next(ctx)
        store_ids = requested_stores(ctx, self._settings)
        strip_file_search(ctx.body)
        query = last_user_text(ctx.body)
        if not store_ids or not query:
            return await call_next(ctx)
        hits = await self._retrieve(ctx, store_ids, query)
        if hits is None:
            return await call_next(ctx)
        return await self._augmented(ctx, hits, call_next)

    async def _responses(self, ctx: RequestContext, call_next: Handler) -> Reply:
        """Responses: the same retrieval; what was found goes to the backend adapter (``FILE_SEARCH``)."""
        query = query_of(ctx.body)
        store_ids = requested_stores(ctx, self._settings)
        hits = await self._retrieve(ctx, store_ids, query) if store_ids and query else None
        if hits is None and not asks_file_search(ctx.body):
            return await call_next(ctx)
        if hits:
            inject(ctx.body, context_message(hits, self._settings.max_context_chars))
            self._mark(ctx, "augmented", hits)
        elif hits is not None:
            self._mark(ctx, "none", hits)
        ctx.set(FILE_SEARCH, found(ctx.body, query, hits or []))
        return await call_next(ctx)

    def _mark(self, ctx: RequestContext, outcome: str, hits: list[Hit]) -> None:
        self._outcomes.labels(outcome).inc()
        ctx.response_headers[RAG_HEADER] = outcome
        if hits:
            ctx.response_headers[CITATIONS_HEADER] = citation_header(hits)

    async def _retrieve(self, ctx: RequestContext, store_ids: tuple[str, ...], query: str) -> list[Hit] | None:
        try:
            stores = [await self._service.store(tenant_of(ctx.principal), sid) for sid in store_ids]
            for store in stores:
                await self._gate.store(ctx.principal, store.id, ctx.model, ctx.request_id)
            regions = store_regions(stores)
            if regions:
                ctx.hints.data_regions = regions  # a soft preference for the router and the scheduler
            vector = (await self._service.embedder.embed([query]))[0]
            hits: list[Hit] = []
            for store in stores:
                hits += await self._service.search(store, vector, self._settings.top_k, None,
                                                   self._settings.score_threshold)
        except (StoreUnavailable, EmbeddingError):
            if self._settings.on_unavailable == "fail":
                raise ServiceOverloaded("Retrieval is unavailable.", code="rag_unavailable") from None
            self._outcomes.labels("unavailable").inc()
            ctx.response_headers[RAG_HEADER] = "unavailable"
            return None
        return sorted(hits, key=lambda h: -h.score)[: self._settings.top_k]

    async def _augmented(self, ctx: RequestContext, hits: list[Hit], call_next: Handler) -> Reply:
        if not hits:
            self._mark(ctx, "none", hits)
            return await call_next(ctx)
        message = context_message(hits, self._settings.max_context_chars)
        ctx.body["messages"] = insert_before_last_user(list(ctx.body["messages"]), message)
        self._mark(ctx, "augmented", hits)
        reply = await call_next(ctx)
        if reply.stream is not None:
            return replace(reply, stream=cite_stream(reply.stream, citations(hits)))
        if reply.status == 200 and reply.media_type.startswith("application/json"):
            reply = replace(reply, body=with_citations(reply.body, citations(hits)))
        return reply


async def cite_stream(chunks: AsyncIterator[bytes], cited: list[dict[str, Any]]) -> AsyncGenerator[bytes, None]:
    """Relay a stream as it comes, with ``llmops.citations`` on the chunk that finishes the answer."""
    pending = True
    async for raw, doc in sse_events(chunks):
        choices = (doc or {}).get("choices") or []
        if pending and doc is not None and choices and isinstance(choices[0], dict) and choices[0].get("finish_reason"):
            doc["llmops"] = {**(doc.get("llmops") or {}), "citations": cited}
            pending = False
            yield b"data: " + orjson.dumps(doc) + b"\n\n"
        else:
            yield raw


def store_regions(stores: list[StoreRow]) -> tuple[str, ...]:
    """Where the data lives: each store's ``metadata.region`` (OpenAI-style store metadata)."""
    found = (s.metadata.get("region") for s in stores)
    return tuple(dict.fromkeys(r for r in found if isinstance(r, str) and r))


def build(services: Services) -> RagStage:
    outcomes = Counter("llmops_rag_requests", "Chat requests that named vector stores, by outcome.",
                       ["outcome"], registry=services.metrics.registry)
    return RagStage(services.settings.rag, services.vector_stores, services.gate, outcomes)
