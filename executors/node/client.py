"""``NodeClient``: what the control plane uses to send signed jobs to a node (aiohttp)."""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any, Self

import aiohttp

from executors.errors import AuthError, JobRejected, NodeError
from executors.signing import sign
from executors.spec import Job, Result, job_to_dict, result_from_dict


class NodeClient:
    """Signs every request with the shared secret. Owns its session unless one is passed in."""

    def __init__(
        self,
        base_url: str,
        secret: bytes,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 120.0,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._secret = secret
        self._owned = session is None
        self._session = session or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))

    async def run(self, job: Job) -> Result:
        """Run ``job`` on the node. Raises ``JobRejected`` (400), ``AuthError`` (401), ``NodeError``."""
        return result_from_dict(await self._call("POST", "/v1/jobs", job_to_dict(job)))

    async def status(self) -> dict[str, Any]:
        answer: dict[str, Any] = await self._call("GET", "/v1/status", None)
        return answer

    async def _call(self, method: str, path: str, payload: Any) -> Any:
        body = b"" if payload is None else json.dumps(payload).encode()
        headers = {"content-type": "application/json", **sign(self._secret, method, path, body)}
        try:
            async with self._session.request(
                method, self._base + path, data=body, headers=headers
            ) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NodeError(f"node {self._base} unreachable: {exc}") from exc
        if status == 401:
            raise AuthError(text)
        if status == 400:
            raise JobRejected(text)
        if status >= 300:
            raise NodeError(f"node answered {status}: {text[:200]}", status)
        return json.loads(text)

    async def aclose(self) -> None:
        if self._owned:
            await self._session.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
