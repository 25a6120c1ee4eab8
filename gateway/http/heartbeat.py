"""The node channel's control-plane side: ``POST /internal/nodes/enroll`` and ``POST /internal/nodes/heartbeat``.

The front door's ``node`` auth mode calls ``NodeChannel.verify``:

- enroll: the body's new public key must have signed the request (proof of possession); the join
  token inside is checked by the handler (``NodeBook.enroll``: unknown, used or expired → 401, an
  id already enrolled → 409).
- heartbeat: signed by the enrolled key of the node named in ``x-llmops-signer`` (unknown,
  revoked, wrong key, stale or replayed → 401), for a body about that same node id. The labels the
  scheduler sees are the ones the join token granted, not the ones the node reports.

With Redis the nonce is also claimed across replicas. The routes exist only when the node plane is on.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

from starlette.requests import Request

from executors.errors import AuthError
from executors.node.heartbeat import HEARTBEAT_PATH
from executors.node.identity import ENROLL_PATH
from executors.signing import (
    CONTROL_PLANE,
    MAX_SKEW_SECONDS,
    NONCE_HEADER,
    SIGNER_HEADER,
    NonceCache,
    load_public,
    verify,
)
from gateway.kernel.context import Principal
from gateway.kernel.errors import AuthenticationFailed, InvalidRequest, PayloadTooLarge
from gateway.kernel.observability.logging import JsonLog
from routers.scheduler.enrollment import NodeBook
from routers.scheduler.nodes import node_from_heartbeat
from routers.scheduler.scheduler import Scheduler

MAX_NODE_REQUEST_BYTES = 64 * 1024


class NodeChannel:
    heartbeat_path = HEARTBEAT_PATH
    enroll_path = ENROLL_PATH

    def __init__(self, book: NodeBook, scheduler: Scheduler, log: JsonLog) -> None:
        self._book = book
        self._scheduler = scheduler
        self._log = log
        self._nonces = NonceCache()

    async def verify(self, request: Request, body: bytes) -> None:
        """Raises ``AuthenticationFailed`` unless ``body`` is signed by the right node key, fresh and new."""
        if len(body) > MAX_NODE_REQUEST_BYTES:
            raise PayloadTooLarge("The node request is too large.")
        try:
            key_text = self._enrolling_key(body) if request.url.path == ENROLL_PATH else self._node_key(request)
            verify(load_public(key_text), "POST", request.url.path, request.headers, body,
                   signer=request.headers.get(SIGNER_HEADER, ""), audience=CONTROL_PLANE, nonces=self._nonces)
            if not await self._scheduler.registry.claim_nonce(request.headers[NONCE_HEADER], 2 * MAX_SKEW_SECONDS):
                raise AuthError("replayed nonce")
        except AuthError as exc:
            self._log.warning("node_request_rejected", path=request.url.path, reason=str(exc),
                              node_id=request.headers.get(SIGNER_HEADER, ""))
            raise AuthenticationFailed(f"Unauthorized node request: {exc}.", code="node_unauthorized") from None

    def _node_key(self, request: Request) -> str:
        node_id = request.headers.get(SIGNER_HEADER, "")
        enrolled = self._book.get(node_id)
        if enrolled is None:
            raise AuthError(f"node {node_id!r} is not enrolled")
        if not enrolled.trusted:
            raise AuthError(f"node {node_id!r} is revoked")
        return enrolled.public_key

    @staticmethod
    def _enrolling_key(body: bytes) -> str:
        data = _object(body)
        key = data.get("public_key")
        if not isinstance(key, str):
            raise AuthError("enrollment needs the node's public_key")
        return key

    async def heartbeat(self, request: Request, principal: Principal | None) -> dict[str, Any]:
        try:
            node = node_from_heartbeat(json.loads(await request.body()), time.time())
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        enrolled = self._book.trusted(request.headers.get(SIGNER_HEADER, ""))
        if enrolled is None or node.id != enrolled.node_id:
            raise AuthenticationFailed("A node may only heartbeat as itself.", code="node_unauthorized")
        if not node.url.startswith("https://"):
            raise InvalidRequest("A node must serve jobs over https.", param="url")
        await self._scheduler.registry.upsert(replace(node, labels=dict(enrolled.labels)))
        await self._scheduler.refresh()
        return {"ok": True, "node_id": node.id}

    async def enroll(self, request: Request, principal: Principal | None) -> dict[str, Any]:
        data = _object(await request.body())
        fields = [data.get(k) for k in ("token", "node_id", "public_key", "cert_sha256")]
        if not all(isinstance(f, str) for f in fields):
            raise InvalidRequest("enrollment needs token, node_id, public_key and cert_sha256 strings")
        token, node_id, public_key, cert = (str(f) for f in fields)
        if request.headers.get(SIGNER_HEADER) != node_id:
            raise AuthenticationFailed("The enrollment must be signed as the node id it asks for.",
                                       code="node_unauthorized")
        node = self._book.enroll(token, node_id, public_key, cert)
        self._log.info("node_enrolled", node_id=node.node_id, labels=dict(node.labels))
        return {"node_id": node.node_id, "labels": dict(node.labels), "control_plane_key": self._book.public_key}


def _object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise AuthError("the body must be a JSON object")
    return data
