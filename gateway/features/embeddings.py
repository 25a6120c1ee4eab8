"""Feature module: provide the gateway's embedder (``EMBEDDER``); the model loads on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.kernel.config.sections.rag import EmbeddingSettings
from gateway.services.embeddings.base import EMBEDDER, Embedder

if TYPE_CHECKING:
    from gateway.runtime import Runtime


def make_embedder(settings: EmbeddingSettings) -> Embedder:
    if settings.provider == "openai":
        from gateway.services.embeddings.remote import RemoteEmbedder

        return RemoteEmbedder(settings)
    from gateway.services.embeddings.batcher import BatchingEmbedder
    from gateway.services.embeddings.minilm import DIMENSIONS, MiniLmModel

    return BatchingEmbedder(settings.model, DIMENSIONS, lambda: MiniLmModel().embed, settings.max_batch)


async def start(runtime: Runtime) -> None:
    embedder = make_embedder(runtime.settings.rag.embeddings)
    runtime.provide(EMBEDDER, embedder)
    runtime.resources.push_async_callback(embedder.aclose)
