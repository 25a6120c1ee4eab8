"""The one decision point: every question the gateway puts to the policy goes through a ``PolicyGate``.

The chain's own request (the authz stage), each routing attempt's canonical model (the router), each
non-chain route (the front door), each vector store read (rag, search) and each tool call ask here, with
a document built by ``gateway.kernel.policy_input`` — one shape, one engine, one decision log.

Without an engine (no ``authz`` stage) every question is answered "allowed, unconstrained": the key's
model grants still apply, and they are checked by the caller (``Principal.may_use``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gateway.kernel.context import Principal, RequestContext
from gateway.kernel.errors import PermissionDenied
from gateway.kernel.policy import Action, Decision, PolicyEngine, PolicyUnavailable
from gateway.kernel.policy_input import build_document, document_for, request_resource

SpendOf = Callable[[Principal | None], Mapping[str, float]]
UNCONSTRAINED = Decision(True, ("no policy configured",))


class PolicyGate:
    def __init__(self, engine: PolicyEngine | None, region: str = "", spend_of: SpendOf | None = None) -> None:
        self.engine = engine
        self._region = region
        self._spend_of = spend_of

    @property
    def configured(self) -> bool:
        return self.engine is not None

    def _spend(self, principal: Principal | None) -> Mapping[str, float] | None:
        return self._spend_of(principal) if self._spend_of is not None else None

    async def decide(self, action: Action, principal: Principal | None, resource: Mapping[str, Any],
                     request_id: str = "") -> Decision:
        """The decision on ``action`` over ``resource``; an engine that cannot answer is a deny."""
        if self.engine is None:
            return UNCONSTRAINED
        document = build_document(action, principal, resource, region=self._region, request_id=request_id,
                                  spend=self._spend(principal))
        try:
            return await self.engine.decide(action, document)
        except PolicyUnavailable:
            return Decision(False, ("policy engine unavailable: denied",))

    async def request(self, ctx: RequestContext, model: str | None = None) -> Decision:
        """The chain request itself, or the same request sent to ``model`` (a fallback, an auto choice)."""
        if self.engine is None:
            return UNCONSTRAINED
        resource = request_resource(ctx) if model is None else {**request_resource(ctx), "model": model}
        document = document_for(ctx, None, resource, region=self._region, spend=self._spend(ctx.principal))
        return await self.engine.decide(document["action"], document)

    async def tool(self, ctx: RequestContext, resource: Mapping[str, Any]) -> Decision:
        if self.engine is None:
            return UNCONSTRAINED
        document = document_for(ctx, "tool_call", resource, region=self._region, spend=self._spend(ctx.principal))
        return await self.engine.decide("tool_call", document)

    async def store(self, principal: Principal | None, store_id: str, model: str, request_id: str) -> None:
        """Raises ``PermissionDenied`` unless reading ``store_id`` (for ``model``, "" if none) is allowed."""
        resource = {"model": model, "modality": "text", "tools": [], "secrets": [], "egress": [],
                    "vector_stores": [store_id]}
        decision = await self.decide("rag_query", principal, resource, request_id)
        if not decision.allow:
            reason = "; ".join(decision.reasons) or "denied by policy"
            raise PermissionDenied(f"Vector store {store_id} is not authorized ({reason}).",
                                   headers=decision_header(decision))


def decision_header(decision: Decision) -> dict[str, str]:
    return {"x-policy-decision-id": decision.decision_id} if decision.decision_id else {}


def denied(decision: Decision) -> PermissionDenied:
    reasons = "; ".join(decision.reasons) or "no rule allowed it"
    return PermissionDenied(
        f"Request denied by policy: {reasons} (decision {decision.decision_id}).",
        headers=decision_header(decision),
    )
