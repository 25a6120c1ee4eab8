"""The composition root: settings in, one ASGI application out.

Request path (outermost first)::

    RequestId → AccessLog (+metrics) → BodyLimit → Starlette routing → endpoint
      → parse + validate once → RequestContext → filter chain (settings.chain) → Router → Backend
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from gateway.api.audio import TranscriptionEndpoint
from gateway.api.health import HealthEndpoints
from gateway.api.models import ModelsEndpoint
from gateway.api.openai_json import JsonEndpoint
from gateway.api.responses import error_response
from gateway.errors import GatewayError, MethodNotAllowed, NotFound
from gateway.observability.exchange import RequestIds, exchange_of
from gateway.runtime import Runtime, features
from gateway.schemas import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    ImageRequest,
    SpeechRequest,
)
from middleware.transport import AccessLogMiddleware, BodyLimitMiddleware, RequestIdMiddleware


def build_app(runtime: Runtime) -> ASGIApp:
    settings = runtime.settings
    routes = _routes(runtime)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        flusher = asyncio.create_task(_flush_logs(runtime))
        try:
            yield
        finally:
            flusher.cancel()
            await runtime.aclose()

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            err: GatewayError = MethodNotAllowed(
                f"Method {request.method} is not allowed for {request.url.path}.", headers=exc.headers
            )
        elif exc.status_code == 404:
            err = NotFound(f"Invalid URL ({request.method} {request.url.path}).", code="unknown_url")
        else:
            err = GatewayError(exc.detail, status=exc.status_code)
        exchange_of(request.scope).error_code = err.code
        return error_response(err)

    async def on_crash(request: Request, exc: Exception) -> Response:
        runtime.log.error("unhandled_error", request_id=exchange_of(request.scope).request_id,
                          exception=type(exc).__name__)
        return error_response(GatewayError("The gateway hit an internal error.", code="internal_error"))

    app: ASGIApp = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: on_http_error, Exception: on_crash},
    )
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
        Route("/v1/chat/completions", chat.handle, methods=["POST"]),
        Route("/v1/completions", completions.handle, methods=["POST"]),
        Route("/v1/embeddings", embeddings.handle, methods=["POST"]),
        Route("/v1/images/generations", images.handle, methods=["POST"]),
        Route("/v1/audio/speech", speech.handle, methods=["POST"]),
        Route("/v1/audio/transcriptions", transcriptions.handle, methods=["POST"]),
        Route("/v1/models", models.list, methods=["GET"]),
        Route("/v1/models/{model:path}", models.get, methods=["GET"]),
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Route("/metrics", health.metrics, methods=["GET"]),
        *extra,
    ]


async def _flush_logs(runtime: Runtime) -> None:
    while True:
        await asyncio.sleep(0.5)
        runtime.log.flush()
