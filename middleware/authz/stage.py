"""Authorization stage: ask the policy gate about the request, apply obligations or deny.

The request is decided on its canonical model (``""`` for ``auto``: the router asks once per candidate,
and per fallback). Obligations travel on: the max_tokens cap is applied to the body here, the allowed
regions become a hard routing hint.
"""

from __future__ import annotations

from gateway.kernel.chain import Handler
from gateway.kernel.context import Reply, RequestContext
from gateway.kernel.policy import Obligations
from gateway.services.bundle import Services
from gateway.services.policy.gate import PolicyGate, denied

# Where each route's body says how many tokens it may generate (the first key is set when none is).
_LIMIT_KEYS: dict[str, tuple[str, ...]] = {
    "chat": ("max_tokens", "max_completion_tokens"), "completions": ("max_tokens",), "messages": ("max_tokens",),
    "responses": ("max_output_tokens",),
}


class AuthzStage:
    name = "authz"

    def __init__(self, gate: PolicyGate) -> None:
        self._gate = gate

    async def __call__(self, ctx: RequestContext, call_next: Handler) -> Reply:
        decision = await self._gate.request(ctx)
        if not decision.allow:
            raise denied(decision)
        obligations = decision.obligations
        if obligations.allowed_regions is not None:
            ctx.hints.allowed_regions = frozenset(obligations.allowed_regions)
        keys = _LIMIT_KEYS.get(ctx.route)
        if keys is not None:
            cap_max_tokens(ctx.body, obligations, keys)
        return await call_next(ctx)


def cap_max_tokens(body: dict[str, object], obligations: Obligations,
                   keys: tuple[str, ...] = ("max_tokens", "max_completion_tokens")) -> None:
    """Lower (or set) the body's token limits (``keys``) to the policy's cap."""
    cap = obligations.max_tokens
    if cap is None:
        return
    present = [k for k in keys if body.get(k) is not None]
    for k in present:
        value = body[k]
        if not isinstance(value, int) or value > cap:
            body[k] = cap
    if not present:
        body[keys[0]] = cap


def build(services: Services) -> AuthzStage:
    Services.need(services.gate.engine, "a policy engine", "policy")
    return AuthzStage(services.gate)
