"""Liveness, readiness and the Prometheus scrape endpoint.

``/healthz`` (and ``/livez``): the process answers. ``/readyz``: ready while every configured model
has at least one deployment whose backend answers (and Redis, when configured, answers a PING); the
body has the detail per model and backend. A degraded model (some deployments down) or an unready one
is a metric (``llmops_model_ready``) and a log line when it changes, so one backend down takes the
pod out of its Service only when a model has nothing left to serve it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.http.responses import JSON
from gateway.kernel.context import Principal

if TYPE_CHECKING:
    from gateway.wiring import Gateway

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
_PING_TIMEOUT_S = 1.0


class HealthEndpoints:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._last: dict[str, str] = {}

    async def healthz(self, request: Request, principal: Principal | None) -> Response:
        return Response(b'{"status":"ok"}', media_type=JSON)

    async def readyz(self, request: Request, principal: Principal | None) -> Response:
        backends = self._gateway.backends
        results = await asyncio.gather(*(b.ready() for b in backends.values()))
        up = dict(zip(backends, results, strict=True))
        models = {entry.name: self._model(entry.name, [d.backend.name for d in entry.deployments], up)
                  for entry in self._gateway.registry}
        stores = await self._stores()
        ready = all(m["status"] != "unready" for m in models.values()) and all(v == "ok" for v in stores.values())
        body: dict[str, Any] = {"status": "ready" if ready else "not_ready", "models": models,
                                "backends": {name: "ok" if ok else "unreachable" for name, ok in up.items()}}
        if stores:
            body["stores"] = stores
        return Response(orjson.dumps(body), status_code=200 if ready else 503, media_type=JSON)

    def _model(self, name: str, deployments: list[str], up: dict[str, bool]) -> dict[str, Any]:
        healthy = sum(1 for b in deployments if up.get(b))
        status = "ready" if healthy == len(deployments) else "degraded" if healthy else "unready"
        self._gateway.metrics.model_ready.labels(name).set(1.0 if healthy else 0.0)
        if self._last.get(name, "ready") != status:
            self._gateway.log.warning("model_readiness", model=name, status=status, healthy=healthy,
                                      deployments=len(deployments))
        self._last[name] = status
        return {"status": status, "healthy_deployments": healthy, "deployments": len(deployments)}

    async def _stores(self) -> dict[str, str]:
        services = self._gateway.services
        if services is None or services.redis is None:
            return {}
        try:
            await asyncio.wait_for(services.redis.ping(), _PING_TIMEOUT_S)
        except Exception:
            return {"redis": "unreachable"}
        return {"redis": "ok"}

    async def metrics(self, request: Request, principal: Principal | None) -> Response:
        return Response(self._gateway.metrics.exposition(), media_type=OPENMETRICS)
