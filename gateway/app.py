"""The composition root: settings in, one ASGI application out.

Request path (outermost first)::

    RequestId → AccessLog (+metrics) → BodyLimit → Errors → Starlette routing → endpoint
      → parse + validate once → RequestContext → filter chain (settings.chain) → Router → Backend
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

from starlette.routing import BaseRoute, Route, Router
from starlette.types import ASGIApp

from gateway.http.asgi import Endpoint
from gateway.http.audio import TranscriptionEndpoint
from gateway.http.health import HealthEndpoints
from gateway.http.models import ModelsEndpoint
from gateway.http.openai_json import JsonEndpoint
from gateway.kernel.observability.exchange import RequestIds
from gateway.kernel.schemas import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    ImageRequest,
    SpeechRequest,
)
from gateway.runtime import Runtime, features
from middleware.transport import AccessLogMiddleware, BodyLimitMiddleware, ErrorMiddleware, RequestIdMiddleware


def build_app(runtime: Runtime) -> ASGIApp:
    settings = runtime.settings

    @contextlib.asynccontextmanager
    async def lifespan(app: object) -> AsyncIterator[None]:
        await runtime.start()
        _settle_heap()
        flusher = asyncio.create_task(_flush_logs(runtime))
        try:
            yield
        finally:
            flusher.cancel()
            await runtime.aclose()

    app: ASGIApp = Router(routes=_routes(runtime), lifespan=lifespan, redirect_slashes=False)
    app = ErrorMiddleware(app, runtime.log)
    app = BodyLimitMiddleware(app, settings.server.max_body_bytes)
    app = AccessLogMiddleware(app, runtime.log, runtime.metrics, enabled=settings.server.access_log)
    return RequestIdMiddleware(app, RequestIds(), settings.server.request_id_header)


def _routes(runtime: Runtime) -> list[BaseRoute]:
    chat = JsonEndpoint("chat", ChatCompletionRequest, runtime, streams=True)
    completions = JsonEndpoint("completions", CompletionRequest, runtime, streams=True)
    embeddings = JsonEndpoint("embeddings", EmbeddingRequest, runtime)
    images = JsonEndpoint("images", ImageRequest, runtime, default_model="dall-e-2")
    speech = JsonEndpoint("speech", SpeechRequest, runtime)
    transcriptions = TranscriptionEndpoint(runtime, runtime.settings.server.max_body_bytes)
    models = ModelsEndpoint(runtime)
    health = HealthEndpoints(runtime)
    extra: list[BaseRoute] = []
    for feature in features():
        provider = getattr(feature, "routes", None)
        if provider is not None:
            extra.extend(provider(runtime))
    return [
        Route("/v1/chat/completions", Endpoint(chat.handle), methods=["POST"]),
        Route("/v1/completions", Endpoint(completions.handle), methods=["POST"]),
        Route("/v1/embeddings", Endpoint(embeddings.handle), methods=["POST"]),
        Route("/v1/images/generations", Endpoint(images.handle), methods=["POST"]),
        Route("/v1/audio/speech", Endpoint(speech.handle), methods=["POST"]),
        Route("/v1/audio/transcriptions", Endpoint(transcriptions.handle), methods=["POST"]),
        Route("/v1/models", Endpoint(models.list), methods=["GET"]),
        Route("/v1/models/{model:path}", Endpoint(models.get), methods=["GET"]),
        Route("/healthz", Endpoint(health.healthz), methods=["GET"]),
        Route("/readyz", Endpoint(health.readyz), methods=["GET"]),
        Route("/metrics", Endpoint(health.metrics), methods=["GET"]),
        *extra,
    ]


def _settle_heap() -> None:
    """Move everything built at startup out of the collector's sight, and collect less often.

    Modules, settings and pools live as long as the process; without this, every full collection
    walks them again, and those pauses land on whichever request allocated last.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


async def _flush_logs(runtime: Runtime) -> None:
    while True:
        await asyncio.sleep(0.5)
        runtime.log.flush()
