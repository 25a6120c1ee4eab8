"""Liveness, readiness and the Prometheus scrape endpoint."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.http.responses import JSON
from gateway.kernel.context import Principal

if TYPE_CHECKING:
    from gateway.wiring import Gateway

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


class HealthEndpoints:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def healthz(self, request: Request, principal: Principal | None) -> Response:
        return Response(b'{"status":"ok"}', media_type=JSON)

    async def readyz(self, request: Request, principal: Principal | None) -> Response:
        backends = self._gateway.backends
        results = await asyncio.gather(*(b.ready() for b in backends.values()))
        states = {name: ("ok" if ok else "unreachable") for name, ok in zip(backends, results, strict=True)}
        ready = all(results)
        body = {"status": "ready" if ready else "not_ready", "backends": states}
        return Response(orjson.dumps(body), status_code=200 if ready else 503, media_type=JSON)

    async def metrics(self, request: Request, principal: Principal | None) -> Response:
        return Response(self._gateway.metrics.exposition(), media_type=OPENMETRICS)
