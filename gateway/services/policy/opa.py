"""A remote OPA (sidecar or central) through its REST data API, via ``opa-python-client``.

``POST /v1/data/<package path>/<rule>`` with ``{"input": ...}``; a response without ``result``
is an undefined decision (a deny). Any transport failure or a slow answer is ``PolicyUnavailable``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from opa_client.opa_async import AsyncOpaClient

from gateway.kernel.policy import PolicyUnavailable


class OpaEvaluator:
    def __init__(self, url: str, decision: str, timeout_ms: int) -> None:
        parts = urlsplit(url)
        https = parts.scheme == "https"
        self._timeout_s = timeout_ms / 1000
        self._client = AsyncOpaClient(
            host=parts.hostname or "127.0.0.1", port=parts.port or (443 if https else 80), ssl=https,
            timeout=self._timeout_s, retries=0,
        )
        package, _, self._rule = decision.strip("/").rpartition("/")
        self._package = package
        self._started = False

    async def evaluate(self, document: Mapping[str, Any]) -> Any:
        if not self._started:
            await self._client.__aenter__()
            self._started = True
        try:
            answer = await asyncio.wait_for(
                self._client.query_rule(dict(document), self._package, self._rule), self._timeout_s
            )
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            raise PolicyUnavailable(f"OPA did not answer: {type(exc).__name__}") from exc
        return answer.get("result") if isinstance(answer, dict) else None

    def reload_if_changed(self) -> bool:
        return False

    async def aclose(self) -> None:
        await self._client.close_connection()
