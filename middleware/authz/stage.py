"""Authorization stage: build the input document, ask the engine, apply obligations or deny."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gateway.kernel.chain import Handler
from gateway.kernel.context import Principal, Reply, RequestContext
from gateway.kernel.errors import PermissionDenied
from gateway.kernel.policy import DECISION, POLICY_ENGINE, Decision, Obligations, PolicyEngine
from gateway.kernel.policy_input import document_for
from gateway.runtime import Runtime
from gateway.services.limits.ledger import SPEND_LEDGER

SpendOf = Callable[[Principal | None], Mapping[str, float]]
_CAPPED_ROUTES = ("chat", "completions", "messages")


class AuthzStage:
    name = "authz"

    def __init__(self, engine: PolicyEngine, region: str, spend_of: SpendOf | None = None) -> None:
        self._engine = engine
        self._region = region
        self._spend_of = spend_of

    async def __call__(self, ctx: RequestContext, call_next: Handler) -> Reply:
        spend = self._spend_of(ctx.principal) if self._spend_of is not None else None
        document = document_for(ctx, region=self._region, spend=spend)
        decision = await self._engine.decide(document["action"], document)
        ctx.set(DECISION, decision)
        if not decision.allow:
            raise denied(decision)
        if ctx.route in _CAPPED_ROUTES:
            cap_max_tokens(ctx.body, decision.obligations)
        return await call_next(ctx)


def denied(decision: Decision) -> PermissionDenied:
    reasons = "; ".join(decision.reasons) or "no rule allowed it"
    return PermissionDenied(
        f"Request denied by policy: {reasons} (decision {decision.decision_id}).",
        headers={"x-policy-decision-id": decision.decision_id},
    )


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


def build(runtime: Runtime) -> AuthzStage:
    ledger = runtime.lookup(SPEND_LEDGER)
    return AuthzStage(runtime.require(POLICY_ENGINE), runtime.settings.policy.region,
                      ledger.spend_of if ledger is not None else None)
