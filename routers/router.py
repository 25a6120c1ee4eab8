"""The terminal filter: pick a deployment for the requested model and send the request there."""

from __future__ import annotations

from itertools import count

from gateway.context import Reply, RequestContext
from gateway.errors import ModelNotFound, UpstreamUnavailable
from routers.registry import Deployment, ModelRegistry


class Router:
    name = "router"

    def __init__(self, registry: ModelRegistry) -> None:
        self._registry = registry
        self._turn = count()

    async def __call__(self, ctx: RequestContext) -> Reply:
        entry = self._registry.resolve(ctx.model)
        if entry is None:
            raise ModelNotFound(f"The model {ctx.model!r} does not exist or you do not have access to it.", param="model")
        deployments = entry.deployments
        start = next(self._turn) % len(deployments)
        last_error: UpstreamUnavailable | None = None
        for i in range(len(deployments)):
            deployment = deployments[(start + i) % len(deployments)]
            try:
                return await self._send(ctx, deployment)
            except UpstreamUnavailable as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    async def _send(self, ctx: RequestContext, deployment: Deployment) -> Reply:
        ctx.backend = deployment.backend.name
        ctx.upstream_model = deployment.upstream_model
        return await deployment.backend.send(ctx, deployment.upstream_model)
