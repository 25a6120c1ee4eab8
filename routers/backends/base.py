"""The backend seam: the router hands a request context to a ``Backend`` and gets a ``Reply``."""

from __future__ import annotations

import os
from typing import Protocol

from gateway.kernel.config import BackendSettings
from gateway.kernel.context import Reply, RequestContext

UPSTREAM_PATHS = {
    "chat": "/chat/completions",
    "completions": "/completions",
    "embeddings": "/embeddings",
    "images": "/images/generations",
    "speech": "/audio/speech",
    "transcriptions": "/audio/transcriptions",
    "messages": "/messages",
    "responses": "/responses",
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


def api_key_of(settings: BackendSettings) -> str | None:
    """The upstream key: ``api_key``, else the variable ``api_key_env`` names."""
    key = settings.api_key.get_secret_value() if settings.api_key else None
    if key is None and settings.api_key_env:
        key = os.environ.get(settings.api_key_env)
    return key
