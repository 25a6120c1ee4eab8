"""``build_app(behaviour)``: the simulator's one composition root."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from simulator import anthropic, audio, chat, completions, control, embeddings, images, models, responses
from simulator.behaviour import Behaviour
from simulator.errors import SimError, dialect_for, render_error
from simulator.pipeline import endpoint, sim_state
from simulator.state import SimState


class SimNameMiddleware:
    """Adds ``x-sim-name`` to every response (pure ASGI; the name is read per request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        name = scope["app"].state.sim.behaviour.name.encode()

        async def send_with_name(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-sim-name", name)]
            await send(message)

        await self.app(scope, receive, send_with_name)


async def _sim_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SimError)
    return render_error(exc, dialect_for(request.url.path))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = f"Invalid URL ({request.method} {request.url.path})" if exc.status_code == 404 else exc.detail
    return render_error(SimError(exc.status_code, message), dialect_for(request.url.path))


async def _server_error(request: Request, exc: Exception) -> Response:
    return render_error(SimError(500, f"Simulator failure: {exc!r}"), dialect_for(request.url.path))


def _routes() -> list[Route]:
    post = ["POST"]
    return [
        Route("/v1/chat/completions", endpoint(chat.create_chat_completion), methods=post),
        Route("/v1/completions", endpoint(completions.create_completion), methods=post),
        Route("/v1/embeddings", endpoint(embeddings.create_embeddings), methods=post),
        Route("/v1/models", endpoint(models.list_models, json=False), methods=["GET"]),
        Route("/v1/models/{model_id:path}", endpoint(models.get_model, json=False), methods=["GET"]),
        Route("/v1/images/generations", endpoint(images.create_image), methods=post),
        Route("/v1/audio/speech", endpoint(audio.create_speech), methods=post),
        Route(
            "/v1/audio/transcriptions",
            endpoint(audio.create_transcription, form=True, json=False),
            methods=post,
        ),
        Route("/v1/messages", endpoint(anthropic.create_message), methods=post),
        Route("/v1/responses", endpoint(responses.create_response), methods=post),
        Route("/_sim/health", control.health, methods=["GET"]),
        Route("/_sim/config", control.get_config, methods=["GET"]),
        Route("/_sim/config", control.post_config, methods=post),
        Route("/_sim/requests", control.list_requests, methods=["GET"]),
        Route("/_sim/requests", control.clear_requests, methods=["DELETE"]),
        Route("/_sim/images/{image_id}.png", images.get_image, methods=["GET"]),
    ]


def build_app(behaviour: Behaviour | None = None) -> Starlette:
    """A fresh simulator app; its state (``app.state.sim``) is owned by this app alone."""
    app = Starlette(
        routes=_routes(),
        middleware=[Middleware(SimNameMiddleware)],
        exception_handlers={SimError: _sim_error, HTTPException: _http_error, Exception: _server_error},
    )
    app.state.sim = SimState(behaviour or Behaviour())
    return app


__all__ = ["build_app", "sim_state"]
