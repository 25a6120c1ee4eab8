"""Liveness, readiness and the Prometheus scrape endpoint."""

from __future__ import annotations

import asyncio

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.http.responses import JSON
from gateway.kernel.observability.exchange import exchange_of
from gateway.runtime import Runtime

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


class HealthEndpoints:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def healthz(self, request: Request) -> Response:
        exchange_of(request.scope).route = "health"
        return Response(b'{"status":"ok"}', media_type=JSON)

    async def readyz(self, request: Request) -> Response:
        exchange_of(request.scope).route = "health"
        backends = self._runtime.backends
        results = await asyncio.gather(*(b.ready() for b in backends.values()))
        states = {name: ("ok" if ok else "unreachable") for name, ok in zip(backends, results, strict=True)}
        ready = all(results)
        body = {"status": "ready" if ready else "not_ready", "backends": states}
        return Response(orjson.dumps(body), status_code=200 if ready else 503, media_type=JSON)

    async def metrics(self, request: Request) -> Response:
        exchange_of(request.scope).route = "metrics"
        return Response(self._runtime.metrics.exposition(), media_type=OPENMETRICS)
