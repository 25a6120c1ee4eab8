"""OpenAI-compatible Files and Vector Stores on PostgreSQL + pgvector, scoped by tenant.

Built by ``gateway/wiring.py``; the RAG and cache stages and the HTTP routes receive it.
"""

from gateway.services.vectorstores.service import VectorStoreService

__all__ = ["VectorStoreService"]
