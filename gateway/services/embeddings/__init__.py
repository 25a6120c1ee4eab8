"""Embeddings for the gateway's own use: retrieval and the semantic cache.

Built by ``gateway/wiring.py`` at startup; the model loads on first use.
"""

from gateway.services.embeddings.base import Embedder, EmbeddingError

__all__ = ["Embedder", "EmbeddingError"]
