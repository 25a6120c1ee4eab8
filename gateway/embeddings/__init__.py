"""Embeddings for the gateway's own use: retrieval and the semantic cache.

``EMBEDDER`` is provided by ``gateway.embeddings.feature`` at startup; the model loads on first use.
"""

from gateway.embeddings.base import EMBEDDER, Embedder, EmbeddingError

__all__ = ["EMBEDDER", "Embedder", "EmbeddingError"]
