"""``NodeClient``: what the control plane uses to send signed jobs to one node over pinned TLS (aiohttp).

Requests are signed with the control plane's key *for this node* (``executors.signing``); answers
must be signed by the node's enrolled key over the request's nonce, or they are refused. The TLS
connection is accepted only if the node presents the certificate pinned at enrollment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from executors.errors import AuthError, JobRejected, NodeError
from executors.inner import MAX_CALLS, Answerer, InnerAnswer, inner_call_from_dict
from executors.signing import CONTROL_PLANE, NONCE_HEADER, audience, sign, verify
from executors.spec import Job, Result, job_to_dict, result_from_dict

NO_ANSWERER = "tool calls are not available to this job"


@dataclass(frozen=True, slots=True)
class NodePin:
    """What the control plane recorded for a node at enrollment."""

    node_id: str
    public_key: Ed25519PublicKey
    cert_sha256: bytes


@dataclass(frozen=True, slots=True)
class SignedRequest:
    method: str
    path: str
    body: bytes
    headers: dict[str, str]


class NodeClient:
    """One node's client. Owns its session unless one is passed in."""

    def __init__(
        self,
        base_url: str,
        key: Ed25519PrivateKey,
        pin: NodePin,
        *,
        boot: str = "",
        session: aiohttp.ClientSession | None = None,
        timeout: float = 120.0,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._audience = audience(pin.node_id, boot)
        self._key = key
        self._pin = pin
        self._tls = aiohttp.Fingerprint(pin.cert_sha256)  # one object: pooled connections are keyed by it
        self._owned = session is None
        self._session = session or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout, connect=5))

    async def run(self, job: Job, answer: Answerer | None = None) -> Result:
        """Run ``job`` on the node. Raises ``JobRejected`` (400), ``AuthError`` (401, bad answer), ``NodeError``.

        A code job's answer may be a pending inner call instead of a result: ``answer`` decides and runs
        it, and what it returns is posted back (``executors/inner.py``), until the result comes. Without
        ``answer`` every call is answered with an error.
        """
        reply = await self.send(self.signed("POST", "/v1/jobs", job_to_dict(job)))
        for _ in range(MAX_CALLS + 1):
            if not isinstance(reply, dict) or "pending" not in reply:
                return result_from_dict(reply)
            call = inner_call_from_dict(reply["pending"])
            given = await answer(call) if answer is not None else InnerAnswer("error", NO_ANSWERER)
            body = {"call_id": call.call_id, "answer": given.to_dict()}
            reply = await self.send(self.signed("POST", f"/v1/jobs/{job.id}/answer", body))
        raise JobRejected(f"node asked for more than {MAX_CALLS} inner tool calls in job {job.id}")

    async def status(self) -> dict[str, Any]:
        answer: dict[str, Any] = await self.send(self.signed("GET", "/v1/status", None))
        return answer

    def signed(self, method: str, path: str, payload: Any) -> SignedRequest:
        """A request signed for this node only, with a fresh nonce."""
        body = b"" if payload is None else json.dumps(payload).encode()
        headers = sign(self._key, method, path, body, signer=CONTROL_PLANE, audience=self._audience)
        return SignedRequest(method, path, body, {"content-type": "application/json", **headers})

    async def send(self, request: SignedRequest) -> Any:
        """Send ``request`` and return the node's verified JSON answer."""
        try:
            async with self._session.request(
                request.method, self._base + request.path, data=request.body, headers=request.headers,
                ssl=self._tls,
            ) as response:
                text = await response.read()
                status, headers = response.status, {k.lower(): v for k, v in response.headers.items()}
        except aiohttp.ServerFingerprintMismatch as exc:
            raise AuthError(f"node {self._pin.node_id} presented another TLS certificate") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NodeError(f"node {self._base} unreachable: {exc}") from exc
        if status == 401:
            raise AuthError(text.decode(errors="replace"))
        if status >= 500:  # a failure, not a result: unsigned is fine, it is never used as output
            raise NodeError(f"node answered {status}: {text[:200]!r}", status)
        self._check_answer(request, status, headers, text)
        if status == 400:
            raise JobRejected(text.decode(errors="replace"))
        if status >= 300:
            raise NodeError(f"node answered {status}: {text[:200]!r}", status)
        return json.loads(text)

    def _check_answer(self, request: SignedRequest, status: int, headers: dict[str, str], body: bytes) -> None:
        if headers.get(NONCE_HEADER) != request.headers[NONCE_HEADER]:
            raise AuthError(f"node {self._pin.node_id} answered without its signature on this request")
        verify(self._pin.public_key, f"RESPONSE {status}", request.path, headers, body, signer=self._pin.node_id,
               audience=CONTROL_PLANE, nonces=None)

    async def aclose(self) -> None:
        if self._owned:
            await self._session.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
