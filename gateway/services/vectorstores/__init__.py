"""OpenAI-compatible Files and Vector Stores on PostgreSQL + pgvector, scoped by tenant.

``VECTOR_STORES`` is provided by ``gateway.features.vectorstores``; the RAG and cache stages use it.
"""

from gateway.services.vectorstores.service import VECTOR_STORES, VectorStoreService

__all__ = ["VECTOR_STORES", "VectorStoreService"]
