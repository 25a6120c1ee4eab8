"""Authentication stage: every request carries a valid key or JWT, or it ends here with a 401.

The front door authenticates chain routes with the same authenticator before the body is read (so
a request without a key is a 401 whatever its body); the stage then keeps that principal, and
authenticates contexts that did not come through a door.

The key's model grants are enforced here, with or without a policy: a request for a model the key
may not use is a 403 ``model_not_granted`` (``auto`` is narrowed to granted models by the router).
"""

from __future__ import annotations

from gateway.kernel.chain import Handler
from gateway.kernel.context import Reply, RequestContext
from gateway.kernel.errors import PermissionDenied
from gateway.services.bundle import Services
from gateway.services.identity.authenticator import Authenticator


class AuthnStage:
    name = "authn"

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    async def __call__(self, ctx: RequestContext, call_next: Handler) -> Reply:
        principal = ctx.principal
        if principal is None:
            principal = ctx.principal = await self._authenticator.authenticate(ctx.headers)
        if not ctx.auto and not principal.may_use(ctx.model):
            raise PermissionDenied(f"The model {ctx.model!r} is not granted to this key.", param="model",
                                   code="model_not_granted")
        return await call_next(ctx)


def build(services: Services) -> AuthnStage:
    return AuthnStage(services.authenticator)
