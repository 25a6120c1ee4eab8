"""Feature module: the vector store service (``VECTOR_STORES``) and its HTTP routes.

PostgreSQL is opened on first use (the embedded server when no DSN is set), so a gateway that
never touches retrieval never starts it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from gateway.http.vector_stores import VectorStoreApi
from gateway.services.embeddings.base import EMBEDDER
from gateway.services.vectorstores.service import VECTOR_STORES, VectorStoreService

if TYPE_CHECKING:
    from gateway.runtime import Runtime


async def start(runtime: Runtime) -> None:
    service = VectorStoreService(runtime.postgres, runtime.require(EMBEDDER), runtime.settings.rag)
    runtime.provide(VECTOR_STORES, service)
    runtime.resources.push_async_callback(service.aclose)


def routes(runtime: Runtime) -> list[BaseRoute]:
    return VectorStoreApi(runtime).routes()
