"""``POST /internal/nodes/heartbeat``: signed node heartbeats in, node registry updated.

Unsigned, badly signed, stale or replayed requests get a 401 (``executors.signing``); with Redis
the nonce is also claimed across replicas. The endpoint exists only when ``tools.node_secret`` is set.
"""

from __future__ import annotations

import json
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from executors.errors import AuthError
from executors.node.heartbeat import HEARTBEAT_PATH
from executors.signing import MAX_SKEW_SECONDS, NONCE_HEADER, NonceCache, verify
from gateway.kernel.observability.logging import JsonLog
from routers.scheduler.nodes import node_from_heartbeat
from routers.scheduler.scheduler import Scheduler

MAX_HEARTBEAT_BYTES = 64 * 1024


class HeartbeatEndpoint:
    path = HEARTBEAT_PATH

    def __init__(self, secret: bytes, scheduler: Scheduler, log: JsonLog) -> None:
        self._secret = secret
        self._scheduler = scheduler
        self._log = log
        self._nonces = NonceCache()

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_HEARTBEAT_BYTES:
            return JSONResponse({"error": "heartbeat too large"}, status_code=413)
        try:
            verify(self._secret, "POST", request.url.path, request.headers, body, self._nonces)
            if not await self._scheduler.registry.claim_nonce(request.headers[NONCE_HEADER], 2 * MAX_SKEW_SECONDS):
                raise AuthError("replayed nonce")
        except AuthError as exc:
            self._log.warning("node_heartbeat_rejected", reason=str(exc))
            return JSONResponse({"error": f"unauthorized: {exc}"}, status_code=401)
        try:
            node = node_from_heartbeat(json.loads(body), time.time())
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        await self._scheduler.registry.upsert(node)
        await self._scheduler.refresh()
        return JSONResponse({"ok": True, "node_id": node.id})
