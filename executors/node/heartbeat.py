"""Heartbeats: ``POST {control_plane}/internal/nodes/heartbeat`` every N seconds, signed with the node's key.

Each beat says how often the node beats (``interval_s``), so the control plane can tell a node that
stopped answering within one interval. A control plane that is down is retried with capped
backoff; the node keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from yarl import URL

from executors.signing import CONTROL_PLANE, sign

log = logging.getLogger(__name__)
HEARTBEAT_PATH = "/internal/nodes/heartbeat"


class Heartbeater:
    """Owns its aiohttp session and task: ``start()``, then ``aclose()``."""

    def __init__(
        self,
        control_plane: str,
        node_id: str,
        key: Ed25519PrivateKey,
        payload: Callable[[], dict[str, Any]],
        *,
        interval: float = 5.0,
        max_backoff: float = 30.0,
    ) -> None:
        self._url = control_plane.rstrip("/") + HEARTBEAT_PATH
        self._path = URL(self._url).raw_path
        self._node_id = node_id
        self._key = key
        self._payload = payload
        self._interval = interval
        self._max_backoff = max_backoff
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self.sent = 0

    async def start(self) -> None:
        if self._task is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
            self._task = asyncio.create_task(self._loop())

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def beat(self) -> bool:
        """Send one heartbeat; True if the control plane accepted it."""
        assert self._session is not None
        body = json.dumps({**self._payload(), "interval_s": self._interval}).encode()
        signed = sign(self._key, "POST", self._path, body, signer=self._node_id, audience=CONTROL_PLANE)
        headers = {"content-type": "application/json", **signed}
        try:
            async with self._session.post(self._url, data=body, headers=headers) as response:
                ok = response.status < 300
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("heartbeat to %s failed: %s", self._url, exc)
            return False
        if not ok:
            log.warning("heartbeat to %s answered %s", self._url, response.status)
        self.sent += ok
        return ok

    async def _loop(self) -> None:
        delay = self._interval
        while True:
            ok = await self.beat()
            delay = self._interval if ok else min(max(delay * 2, 1.0), self._max_backoff)
            await asyncio.sleep(delay)
