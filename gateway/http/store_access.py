"""Who may read which store: the caller's tenant, and the policy engine's ``rag_query`` decision.

Routes outside the chain authenticate like the chain does: when the chain has an ``authn`` stage,
through the identity feature's ``AUTHENTICATOR`` (missing → fail closed); with no authentication
configured at all, everything belongs to tenant ``default``.

Policy is configured when the chain has an ``authz`` stage. Then each store is decided on its own
by ``POLICY_ENGINE`` (action ``rag_query``); a missing engine, or one that cannot answer, is a deny.
With no policy configured at all, reading the caller's own tenant's stores is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from gateway.kernel.context import Principal
from gateway.kernel.errors import PermissionDenied, ServiceOverloaded
from gateway.kernel.policy import POLICY_ENGINE, PolicyUnavailable
from gateway.kernel.policy_input import build_document
from gateway.services.identity.types import AUTHENTICATOR

if TYPE_CHECKING:
    from gateway.runtime import Runtime

DEFAULT_TENANT = "default"


def tenant_of(principal: Principal | None) -> str:
    return principal.tenant if principal is not None and principal.tenant else DEFAULT_TENANT


async def principal_for(runtime: Runtime, headers: Mapping[str, str]) -> Principal | None:
    """Raises the authenticator's ``AuthenticationFailed``; ``None`` = no authentication configured."""
    if "authn" not in runtime.settings.chain:
        return None
    authenticator = runtime.lookup(AUTHENTICATOR)
    if authenticator is None:
        raise ServiceOverloaded("Authentication for this endpoint is not available in this build.",
                                code="authn_unavailable")
    return await authenticator.authenticate(headers)


def policy_required(runtime: Runtime) -> bool:
    return "authz" in runtime.settings.chain


async def authorize_store(runtime: Runtime, principal: Principal | None, store_id: str, model: str | None,
                          request_id: str) -> None:
    """Raises ``PermissionDenied`` unless reading ``store_id`` is allowed."""
    if not policy_required(runtime):
        return
    engine = runtime.lookup(POLICY_ENGINE)
    if engine is None:
        raise PermissionDenied(f"Vector store {store_id} is not authorized: the policy engine is unavailable.")
    resource = {"model": model, "modality": "text", "vector_stores": [store_id]}
    document = build_document("rag_query", principal, resource, request_id=request_id)
    try:
        decision = await engine.decide("rag_query", document)
    except PolicyUnavailable:
        raise PermissionDenied(f"Vector store {store_id} is not authorized: the policy engine did not answer.",
                               ) from None
    if not decision.allow:
        reason = "; ".join(decision.reasons) or "denied by policy"
        raise PermissionDenied(f"Vector store {store_id} is not authorized ({reason}).")
