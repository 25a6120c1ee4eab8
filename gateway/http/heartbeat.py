"""``POST /internal/nodes/heartbeat``: signed node heartbeats in, node registry updated.

The front door's ``node`` auth mode calls ``NodeHeartbeats.verify``: unsigned, badly signed, stale or
replayed requests get a 401 (``executors.signing``); with Redis the nonce is also claimed across
replicas. The route exists only when ``tools.node_secret`` is set.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request

from executors.errors import AuthError
from executors.node.heartbeat import HEARTBEAT_PATH
from executors.signing import MAX_SKEW_SECONDS, NONCE_HEADER, NonceCache, verify
from gateway.kernel.context import Principal
from gateway.kernel.errors import AuthenticationFailed, InvalidRequest, PayloadTooLarge
from gateway.kernel.observability.logging import JsonLog
from routers.scheduler.nodes import node_from_heartbeat
from routers.scheduler.scheduler import Scheduler

MAX_HEARTBEAT_BYTES = 64 * 1024


class NodeHeartbeats:
    path = HEARTBEAT_PATH

    def __init__(self, secret: bytes, scheduler: Scheduler, log: JsonLog) -> None:
        self._secret = secret
        self._scheduler = scheduler
        self._log = log
        self._nonces = NonceCache()

    async def verify(self, request: Request, body: bytes) -> None:
        """Raises ``AuthenticationFailed`` unless ``body`` is signed with the node secret, fresh and new."""
        if len(body) > MAX_HEARTBEAT_BYTES:
            raise PayloadTooLarge("The heartbeat is too large.")
        try:
            verify(self._secret, "POST", request.url.path, request.headers, body, self._nonces)
            if not await self._scheduler.registry.claim_nonce(request.headers[NONCE_HEADER], 2 * MAX_SKEW_SECONDS):
                raise AuthError("replayed nonce")
        except AuthError as exc:
            self._log.warning("node_heartbeat_rejected", reason=str(exc))
            raise AuthenticationFailed(f"Unauthorized node request: {exc}.", code="node_unauthorized") from None

    async def handle(self, request: Request, principal: Principal | None) -> dict[str, Any]:
        try:
            node = node_from_heartbeat(json.loads(await request.body()), time.time())
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        await self._scheduler.registry.upsert(node)
        await self._scheduler.refresh()
        return {"ok": True, "node_id": node.id}
