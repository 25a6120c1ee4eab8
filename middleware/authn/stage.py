"""Authentication stage: every request carries a valid key or JWT, or it ends here with a 401."""

from __future__ import annotations

from gateway.kernel.chain import Handler
from gateway.kernel.context import Reply, RequestContext
from gateway.runtime import Runtime
from gateway.services.identity.authenticator import Authenticator
from gateway.services.identity.types import AUTHENTICATOR


class AuthnStage:
    name = "authn"

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    async def __call__(self, ctx: RequestContext, call_next: Handler) -> Reply:
        ctx.principal = await self._authenticator.authenticate(ctx.headers)
        return await call_next(ctx)


def build(runtime: Runtime) -> AuthnStage:
    return AuthnStage(runtime.require(AUTHENTICATOR))
