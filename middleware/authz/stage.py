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

_CAPPED_ROUTES = ("chat", "completions", "messages")


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
        if ctx.route in _CAPPED_ROUTES:
            cap_max_tokens(ctx.body, obligations)
        return await call_next(ctx)


def cap_max_tokens(body: dict[str, object], obligations: Obligations) -> None:
    """Lower (or set) ``max_tokens``/``max_completion_tokens`` to the policy's cap."""
    cap = obligations.max_tokens
    if cap is None:
        return
    present = [k for k in ("max_tokens", "max_completion_tokens") if body.get(k) is not None]
    for k in present:
        value = body[k]
        if not isinstance(value, int) or value > cap:
            body[k] = cap
    if not present:
        body["max_tokens"] = cap


def build(services: Services) -> AuthzStage:
    Services.need(services.gate.engine, "a policy engine", "policy")
    return AuthzStage(services.gate)
