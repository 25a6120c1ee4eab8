"""The node admin API: ``POST /admin/nodes/tokens``, ``GET /admin/nodes``, ``POST /admin/nodes/{id}/revoke``.

Behind the front door's ``admin`` mode (the admin role, then the policy's ``admin`` action). A join
token is shown once, here; only its hash is kept. Revocation takes effect at once: the node's
heartbeats and results are refused and it is sent no more jobs.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request

from gateway.kernel.context import Principal
from gateway.kernel.errors import InvalidRequest
from gateway.kernel.observability.logging import JsonLog
from routers.scheduler.enrollment import NodeBook
from routers.scheduler.scheduler import Scheduler


class NodeAdmin:
    def __init__(self, book: NodeBook, scheduler: Scheduler, log: JsonLog, token_ttl_s: float) -> None:
        self._book = book
        self._scheduler = scheduler
        self._log = log
        self._ttl = token_ttl_s

    async def issue(self, request: Request, caller: Principal | None) -> dict[str, Any]:
        body = await _json(request)
        labels, node_id, ttl = body.get("labels") or {}, body.get("node_id"), body.get("ttl_s") or self._ttl
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise InvalidRequest("labels must map strings to strings", param="labels")
        if node_id is not None and not isinstance(node_id, str):
            raise InvalidRequest("node_id must be a string", param="node_id")
        if not isinstance(ttl, int | float) or isinstance(ttl, bool) or not 0 < ttl <= 86_400:
            raise InvalidRequest("ttl_s must be a number of seconds in (0, 86400]", param="ttl_s")
        token, expires = self._book.issue({str(k): v for k, v in labels.items()}, node_id, float(ttl))
        self._log.info("node_token_issued", labels=labels, node_id=node_id, by=caller.key_id if caller else "")
        return {"token": token, "expires_at": expires, "labels": labels, "node_id": node_id}

    async def list(self, request: Request, caller: Principal | None) -> dict[str, Any]:
        live = {n.id: n for n in await self._scheduler.registry.live(time.time())}
        data = []
        for node in self._book.nodes():
            seen = live.get(node.node_id) if node.trusted else None
            extra = {"live": seen is not None, "url": seen.url if seen else None,
                     "drivers": list(seen.drivers) if seen else [], "free_slots": seen.free_slots if seen else 0,
                     "slots": seen.slots if seen else 0, "boot": seen.boot if seen else None}
            data.append({**node.to_json(), **extra})
        return {"object": "list", "data": data, "control_plane_key": self._book.public_key}

    async def revoke(self, request: Request, caller: Principal | None) -> dict[str, Any]:
        node = self._book.revoke(str(request.path_params["node_id"]))
        await self._scheduler.refresh()
        self._log.warning("node_revoked", node_id=node.node_id, by=caller.key_id if caller else "")
        return {**node.to_json(), "revoked": True, "at": node.revoked_at or time.time()}


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise InvalidRequest("The body must be JSON.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The body must be a JSON object.")
    return data
