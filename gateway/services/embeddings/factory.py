"""The gateway's embedder from settings: the local MiniLM model (loaded on first use) or a remote API."""

from __future__ import annotations

from gateway.kernel.config.sections.rag import EmbeddingSettings
from gateway.services.embeddings.base import Embedder


def make_embedder(settings: EmbeddingSettings) -> Embedder:
    if settings.provider == "openai":
        from gateway.services.embeddings.remote import RemoteEmbedder

        return RemoteEmbedder(settings)
    from gateway.services.embeddings.batcher import BatchingEmbedder
    from gateway.services.embeddings.minilm import DIMENSIONS, MiniLmModel

    return BatchingEmbedder(settings.model, DIMENSIONS, lambda: MiniLmModel().embed, settings.max_batch)
