"""The ``http_request`` built-in, performed by the node itself (outside any sandbox).

Why here and not in a sandbox with network: per-host egress after DNS needs the check and the
connect to use the same addresses. The node resolves through ``CheckedResolver`` (egress policy
on every resolved address, redirects included), and aiohttp connects only to what it returned,
so neither a rebinding DNS answer nor a redirect can reach a private or metadata address. The
sandboxes themselves never get a network.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from executors.drivers.base import Stopwatch
from executors.egress import Resolver, resolve_allowed, system_resolve
from executors.errors import EgressDenied, JobRejected
from executors.spec import Job, Result

MAX_REDIRECTS = 3


class CheckedResolver(AbstractResolver):
    """An aiohttp resolver that returns only addresses the egress grants allow."""

    def __init__(self, grants: Sequence[str], resolve: Resolver = system_resolve) -> None:
        self._grants = tuple(grants)
        self._resolve = resolve

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await resolve_allowed(host, port, self._grants, self._resolve)
        return [
            ResolveResult(
                hostname=host,
                host=a,
                port=port,
                proto=0,
                flags=socket.AI_NUMERICHOST,
                family=socket.AF_INET6 if ":" in a else socket.AF_INET,
            )
            for a in addresses
        ]

    async def close(self) -> None:
        return None


def parse_request(stdin: str) -> dict[str, Any]:
    try:
        request = json.loads(stdin or "{}")
    except ValueError as exc:
        raise JobRejected("http_request arguments must be JSON") from exc
    if not isinstance(request, dict) or not isinstance(request.get("url"), str):
        raise JobRejected("http_request needs a url")
    return request


async def http_request(job: Job, resolve: Resolver = system_resolve) -> Result:
    """Run one ``http_request`` job; egress refusals come back as exit code 1 with the reason."""
    watch = Stopwatch()
    request = parse_request(job.stdin)
    connector = aiohttp.TCPConnector(
        resolver=CheckedResolver(job.grants.egress, resolve), use_dns_cache=False
    )
    timeout = aiohttp.ClientTimeout(total=job.limits.wall_seconds)
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False) as session:
            async with session.request(
                str(request.get("method", "GET")),
                request["url"],
                headers=request.get("headers") or {},
                data=request.get("body"),
                max_redirects=MAX_REDIRECTS,
            ) as response:
                body = await response.content.read(job.limits.output_bytes + 1)
                status = response.status
    except EgressDenied as exc:
        return Result(1, "", f"egress denied: {exc}", "node", watch.ms())
    except aiohttp.ClientError as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, EgressDenied) else exc
        return Result(1, "", f"http_request failed: {cause}", "node", watch.ms())
    except TimeoutError:
        return Result(1, "", "http_request timed out", "node", watch.ms(), timed_out=True, limit="wall")
    truncated = len(body) > job.limits.output_bytes
    text = json.dumps({"status": status, "body": body[: job.limits.output_bytes].decode("utf-8", "replace")})
    return Result(0, text, "", "node", watch.ms(), truncated=truncated, limit="output" if truncated else None)
