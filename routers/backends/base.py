"""The backend seam: the router hands a request context to a ``Backend`` and gets a ``Reply``."""

from __future__ import annotations

from typing import Protocol

from gateway.kernel.context import Reply, RequestContext

UPSTREAM_PATHS = {
    "chat": "/chat/completions",
    "completions": "/completions",
    "embeddings": "/embeddings",
    "images": "/images/generations",
    "speech": "/audio/speech",
    "transcriptions": "/audio/transcriptions",
    "messages": "/messages",
}


class Backend(Protocol):
    name: str

    async def send(self, ctx: RequestContext, upstream_model: str) -> Reply:
        """Forward ``ctx`` with the model renamed; raise an ``UpstreamError`` on failure."""
        ...

    async def ready(self) -> bool:
        """Whether the backend answers at all (used by ``/readyz`` and health checks)."""
        ...

    async def aclose(self) -> None: ...
