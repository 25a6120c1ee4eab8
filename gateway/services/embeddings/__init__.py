"""Embeddings for the gateway's own use: retrieval and the semantic cache.

``EMBEDDER`` is provided by ``gateway.features.embeddings`` at startup; the model loads on first use.
"""

from gateway.services.embeddings.base import EMBEDDER, Embedder, EmbeddingError

__all__ = ["EMBEDDER", "Embedder", "EmbeddingError"]
