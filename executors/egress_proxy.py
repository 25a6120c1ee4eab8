"""The egress proxy a node runs for one sandboxed job: HTTP from inside the sandbox with the checks of
``http_request`` and the broker's credentials, while the sandbox holds no secret and no network.

The sandbox still has no network interface. The node binds one root-owned directory into it at
``/run/llmops`` holding the unix socket ``egress.sock`` (``$LLMOPS_EGRESS_SOCKET``), and a tool speaks
plain HTTP/1.1 on it (``curl --unix-socket``, ``http.client`` over ``AF_UNIX``, ``httpx`` with ``uds=``):

- the target is the request's absolute URL, or ``Host`` plus the path in origin form; the node speaks
  TLS to the target unless the request says ``X-Llmops-Scheme: http`` (the tool never needs the
  credential, so it never needs to see the TLS session either);
- every hop is admitted as ``http_request``'s are (the job's egress grant, the refused ranges, pinned
  DNS, redirects followed by the node) and brokered credentials are injected only for their hosts;
- the answer comes back with its status and body, redacted of every secret value; a refused target
  is a 403 with the reason, a failure a 502. One request per connection.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

from executors.drivers.base import EGRESS_MOUNT, EGRESS_SOCKET
from executors.errors import EgressDenied, JobRejected, TooManyRedirects
from executors.http_tool import METHODS, Network, Outbound, follow
from executors.redact import Redactor
from executors.spec import Job

MAX_REQUEST_BYTES = 1024 * 1024
_DROPPED = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer",
                      "upgrade", "proxy-authorization", "proxy-connection", "x-llmops-scheme"})
_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}

__all__ = ["EGRESS_MOUNT", "EGRESS_SOCKET", "EgressProxy", "parse_request"]


class EgressProxy:
    """``async with EgressProxy(job) as directory``: the directory to bind at ``EGRESS_MOUNT``."""

    def __init__(self, job: Job, root: Path | None = None, net: Network | None = None) -> None:
        self._job = job
        self._root = root
        self._net = net or Network()
        secrets = {**job.grants.secrets, **{n: s.value for n, s in job.grants.brokered.items()}}
        self._scrub = Redactor(secrets)
        self._dir: Path | None = None
        self._server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> Path:
        self._dir = Path(tempfile.mkdtemp(prefix="llmops-egress-", dir=self._root))
        os.chmod(self._dir, 0o711)  # the sandbox user may reach the socket, not list or add files
        socket_path = self._dir / EGRESS_SOCKET.rsplit("/", 1)[1]
        self._server = await asyncio.start_unix_server(self._serve, path=str(socket_path), limit=65536)
        os.chmod(socket_path, 0o666)
        return self._dir

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, body = await self._answer(reader)
            head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\ncontent-length: {len(body)}\r\n"
                    "content-type: application/octet-stream\r\nconnection: close\r\n\r\n")
            writer.write(head.encode() + body)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the tool went away
        finally:
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        try:
            out = await parse_request(reader)
        except (JobRejected, ValueError, asyncio.LimitOverrunError) as exc:
            return 400, f"egress proxy: {exc}".encode()
        try:
            async with asyncio.timeout(self._job.limits.wall_seconds):
                reply = await follow(out, self._job, self._net)
        except EgressDenied as exc:
            return 403, self._text(f"egress denied: {exc}")
        except TooManyRedirects as exc:
            return 502, self._text(f"egress proxy: {exc}")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            cause: Any = exc.__cause__ if isinstance(exc.__cause__, EgressDenied) else exc
            return (403 if isinstance(cause, EgressDenied) else 502), self._text(f"egress proxy: {cause}")
        return reply.status, self._text(reply.body.decode("utf-8", "replace"))

    def _text(self, text: str) -> bytes:
        return self._scrub(text).encode()


async def parse_request(reader: asyncio.StreamReader) -> Outbound:
    """One HTTP/1.1 request from the tool, as an ``Outbound`` (``JobRejected`` when malformed)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[0] not in METHODS or not parts[2].startswith("HTTP/1."):
        raise JobRejected(f"not an HTTP/1.1 request line: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    if not 0 <= length <= MAX_REQUEST_BYTES:
        raise JobRejected("request body too large")
    body = (await reader.readexactly(length)).decode("utf-8") if length else None
    return Outbound(parts[0], _target(parts[1], headers), _forwarded(headers), body)


def _target(target: str, headers: dict[str, str]) -> URL:
    if target.startswith(("http://", "https://")):
        return URL(target).with_fragment(None)
    host = headers.get("host")
    if not host or not target.startswith("/"):
        raise JobRejected("an origin-form request needs a Host header")
    scheme = "http" if headers.get("x-llmops-scheme", "").lower() == "http" else "https"
    return URL(f"{scheme}://{host}{target}").with_fragment(None)


def _forwarded(headers: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in headers.items() if k not in _DROPPED and not k.startswith("x-llmops-"))
