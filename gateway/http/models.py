"""``GET /v1/models`` and ``GET /v1/models/{id}``: exactly the models this caller may use.

A model is listed when the key's grants include it and, with ``authz`` on, the policy allows it
(action ``models``, ``resource.model`` = the model). The answer is cached per key for
``policy.cache_ttl_s``, so a listing costs one policy question per model at most that often.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from gateway.kernel.context import Principal
from gateway.kernel.errors import ModelNotFound
from gateway.kernel.observability.exchange import exchange_of
from gateway.services.policy.gate import PolicyGate

if TYPE_CHECKING:
    from gateway.wiring import Gateway


class ModelsEndpoint:
    def __init__(self, gateway: Gateway, gate: PolicyGate, cache_ttl_s: float) -> None:
        self._gateway = gateway
        self._gate = gate
        self._ttl_s = cache_ttl_s
        self._created = int(time.time())
        self._visible: dict[str, tuple[float, frozenset[str]]] = {}

    def _card(self, name: str, owned_by: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": self._created, "owned_by": owned_by}

    async def visible(self, principal: Principal | None, request_id: str) -> frozenset[str]:
        """The canonical names this caller may use (the grants, then the policy), cached per key."""
        key = principal.key_id if principal is not None else ""
        now = time.monotonic()
        cached = self._visible.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        names: set[str] = set()
        for entry in self._gateway.registry:
            if principal is not None and not principal.may_use(entry.name):
                continue
            resource = {"model": entry.name, "modality": "", "tools": [], "secrets": [], "egress": [],
                        "vector_stores": []}
            if (await self._gate.decide("models", principal, resource, request_id)).allow:
                names.add(entry.name)
        found = frozenset(names)
        if self._ttl_s > 0:
            if len(self._visible) > 10_000:
                self._visible.clear()
            self._visible[key] = (now + self._ttl_s, found)
        return found

    async def list(self, request: Request, principal: Principal | None) -> dict[str, Any]:
        allowed = await self.visible(principal, _request_id(request))
        registry = self._gateway.registry
        data = [self._card(m.name, m.owned_by) for m in registry if m.name in allowed]
        if registry.auto is not None and any(m.auto and m.name in allowed for m in registry):
            data.append(self._card(registry.auto_name, "llmops"))
        return {"object": "list", "data": data}

    async def get(self, request: Request, principal: Principal | None) -> dict[str, Any]:
        name = request.path_params["model"]
        registry = self._gateway.registry
        allowed = await self.visible(principal, _request_id(request))
        if registry.auto is not None and name == registry.auto_name and any(m.auto and m.name in allowed
                                                                             for m in registry):
            return self._card(name, "llmops")
        entry = registry.resolve(name)
        if entry is None or entry.name not in allowed:
            raise ModelNotFound(f"The model {name!r} does not exist or you do not have access to it.", param="model")
        return self._card(name, entry.owned_by)


def _request_id(request: Request) -> str:
    return exchange_of(request.scope).request_id
