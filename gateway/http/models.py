"""``GET /v1/models`` and ``GET /v1/models/{id}``."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.http.responses import JSON, error_response
from gateway.kernel.errors import GatewayError, ModelNotFound
from gateway.kernel.observability.exchange import exchange_of
from gateway.runtime import Runtime
from routers.registry import MODEL_VISIBILITY

Build = Callable[[Request, "Collection[str] | None"], dict[str, Any]]


class ModelsEndpoint:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._created = int(time.time())

    def _card(self, name: str, owned_by: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": self._created, "owned_by": owned_by}

    async def _allowed(self, request: Request) -> Collection[str] | None:
        visibility = self._runtime.lookup(MODEL_VISIBILITY)
        return await visibility(request) if visibility is not None else None

    async def list(self, request: Request) -> Response:
        return await self._answer(request, self._list)

    async def get(self, request: Request) -> Response:
        return await self._answer(request, self._get)

    async def _answer(self, request: Request, build: Build) -> Response:
        ex = exchange_of(request.scope)
        ex.route = "models"
        try:
            body = build(request, await self._allowed(request))
        except GatewayError as err:
            ex.error_code = err.code
            return error_response(err)
        return Response(orjson.dumps(body), media_type=JSON)

    def _list(self, request: Request, allowed: Collection[str] | None) -> dict[str, Any]:
        registry = self._runtime.registry
        data = [self._card(m.name, m.owned_by) for m in registry if allowed is None or m.name in allowed]
        if registry.auto is not None and allowed is None:
            data.append(self._card(registry.auto_name, "llmops"))
        return {"object": "list", "data": data}

    def _get(self, request: Request, allowed: Collection[str] | None) -> dict[str, Any]:
        name = request.path_params["model"]
        registry = self._runtime.registry
        if registry.auto is not None and name == registry.auto_name:
            return self._card(name, "llmops")
        entry = registry.resolve(name)
        if entry is None or (allowed is not None and entry.name not in allowed):
            raise ModelNotFound(f"The model {name!r} does not exist or you do not have access to it.", param="model")
        return self._card(name, entry.owned_by)
