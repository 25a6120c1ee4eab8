"""The ``http_request`` built-in, performed by the node itself (outside any sandbox).

Every hop is checked before it connects. Redirects are followed here, never by aiohttp: each hop's
URL is parsed, its host resolved (an IP literal is taken as it is) and every address checked
against the grants and the refused ranges (``executors.egress``); at most ``MAX_REDIRECTS`` are
followed. Methods and bodies across redirects follow RFC 9110 §15.4, and the model's credentials
(``Authorization``, ``Cookie``) are dropped when a hop changes origin.

DNS answers are pinned: each hop gets its own connector whose resolver answers that one name with
the addresses just checked, and nothing else (no second lookup, no DNS cache, no connection kept).
Pinning at the resolver rather than putting the IP in the URL keeps the name in the Host header,
in SNI and in the certificate check. The sandboxes themselves never get a network.

Brokered secrets (``Grants.brokered``) are added to each hop afresh, only when that hop's host is
one the secret is granted for, and never once an https request was redirected to plain http; a hop
whose URL holds a secret it may not carry is refused. The result and any error are redacted of
every secret value.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from executors.drivers.base import Stopwatch
from executors.egress import Resolver, resolve_allowed, system_resolve
from executors.errors import EgressDenied, JobRejected, TooManyRedirects
from executors.redact import redact
from executors.spec import BrokeredSecret, Grants, Job, Result, host_granted

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})
# Set by the node, never by the model: framing, and the Host the checked name implies.
_NODE_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "te", "upgrade"})
# Dropped when a redirect changes origin (scheme, host or port).
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
# Dropped with the body when a redirect turns the request into a GET.
_BODY_HEADERS = frozenset({"content-type", "content-encoding", "content-language", "content-location"})

Headers = tuple[tuple[str, str], ...]
Dial = Callable[[str, int], tuple[str, int]]
"""Where the socket for a checked ``(address, port)`` goes: the same, except in tests (a connect hook)."""


def direct(address: str, port: int) -> tuple[str, int]:
    return address, port


@dataclass(frozen=True, slots=True)
class Outbound:
    """One request as the model asked for it (secrets are added per hop, never stored here)."""

    method: str
    url: URL
    headers: Headers = ()
    body: str | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """A hop's host and port, and the addresses checked for it: the only ones it may connect to."""

    host: str
    port: int
    addresses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    location: str | None
    body: bytes


class PinnedResolver(AbstractResolver):
    """Answers the checked name with its checked addresses; refuses any other name."""

    def __init__(self, target: Target, dial: Dial = direct) -> None:
        self._target = target
        self._dial = dial

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host != self._target.host:
            raise EgressDenied(f"{host!r} was not checked for this hop")
        return [_resolved(host, *self._dial(address, port)) for address in self._target.addresses]

    async def close(self) -> None:
        return None


def _resolved(hostname: str, address: str, port: int) -> ResolveResult:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return ResolveResult(
        hostname=hostname, host=address, port=port, proto=0, flags=socket.AI_NUMERICHOST, family=family
    )


def _without(headers: Headers, names: Collection[str]) -> Headers:
    return tuple((k, v) for k, v in headers if k.lower() not in names)


def _headers_of(value: Any) -> Headers:
    if value is None:
        return ()
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise JobRejected("http_request headers must map strings to strings")
    return _without(tuple(value.items()), _NODE_HEADERS)


def parse_request(stdin: str) -> Outbound:
    """The model's arguments as an ``Outbound`` (``JobRejected`` when malformed)."""
    try:
        request = json.loads(stdin or "{}")
    except ValueError as exc:
        raise JobRejected("http_request arguments must be JSON") from exc
    if not isinstance(request, dict) or not isinstance(request.get("url"), str):
        raise JobRejected("http_request needs a url")
    method = str(request.get("method") or "GET").upper()
    body = request.get("body")
    if method not in METHODS or not (body is None or isinstance(body, str)):
        raise JobRejected(f"http_request needs a method in {sorted(METHODS)} and a string body")
    try:
        url = URL(request["url"])
    except ValueError as exc:
        raise JobRejected(f"http_request: invalid url: {exc}") from exc
    return Outbound(method, url.with_fragment(None), _headers_of(request.get("headers")), body)


def redirected(method: str, status: int, body: str | None) -> tuple[str, str | None]:
    """Method and body after a redirect (RFC 9110 §15.4): 303 makes anything but HEAD a GET, 301/302
    make a POST a GET (as every user agent does), and 307/308 keep both."""
    if status == 303 and method != "HEAD":
        return "GET", None
    if status in (301, 302) and method == "POST":
        return "GET", None
    return method, body


def _origin(url: URL) -> tuple[str, str | None, int | None]:
    return url.scheme, url.raw_host, url.port


def next_hop(out: Outbound, status: int, location: str) -> Outbound:
    """The request a redirect asks for; ``location`` may be relative to ``out.url``."""
    try:
        url = out.url.join(URL(location)).with_fragment(None)
    except ValueError as exc:
        raise EgressDenied(f"invalid redirect location: {exc}") from exc
    method, body = redirected(out.method, status, out.body)
    headers = out.headers if body is not None else _without(out.headers, _BODY_HEADERS)
    if _origin(url) != _origin(out.url):
        headers = _without(headers, _CREDENTIAL_HEADERS)
    return Outbound(method, url, headers, body)


def _endpoint(url: URL) -> tuple[str, int]:
    if url.scheme not in ("http", "https") or not url.raw_host or url.port is None:
        raise EgressDenied(f"only absolute http and https URLs are followed, not {url.scheme or 'a relative'} URL")
    return url.raw_host, url.port


async def admit(url: URL, grants: Grants, resolve: Resolver) -> Target:
    """Parse, resolve and check one hop before anything connects (``EgressDenied`` otherwise)."""
    host, port = _endpoint(url)
    return Target(host, port, tuple(await resolve_allowed(host, port, grants.egress, resolve)))


def hop_secrets(grants: Grants, target: Target, *, downgraded: bool) -> dict[str, BrokeredSecret]:
    """The brokered secrets this hop carries: those granted for its host, none once an https
    request has been redirected to plain http."""
    if downgraded:
        return {}
    return {name: s for name, s in grants.brokered.items() if host_granted(target.host, s.hosts)}


def refuse_leaks(url: URL, target: Target, grants: Grants, carried: Mapping[str, BrokeredSecret]) -> None:
    """Refuse a hop whose URL holds a secret it may not carry (a redirect reflecting the query)."""
    text = f"{url} {url.human_repr()}"
    for name, secret in grants.brokered.items():
        if name not in carried and secret.value in text:
            raise EgressDenied(f"the redirect to {target.host!r} would carry secret {name}")


def with_secrets(out: Outbound, carried: Mapping[str, BrokeredSecret]) -> Outbound:
    """``out`` with each carried secret in its header (replacing the model's) or query parameter."""
    url, headers = out.url, out.headers
    for secret in carried.values():
        if secret.header is not None:
            headers = (*_without(headers, {secret.header.lower()}), (secret.header, secret.rendered()))
        elif secret.query is not None:
            url = url.update_query({secret.query: secret.rendered()})
    return replace(out, url=url, headers=headers)


async def _read(content: aiohttp.StreamReader, limit: int) -> bytes:
    """Up to ``limit + 1`` bytes (the extra byte tells truncation), however the body is chunked."""
    data = bytearray()
    while len(data) <= limit:
        chunk = await content.read(limit + 1 - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


@dataclass(frozen=True, slots=True)
class Network:
    """How hops reach the network: the resolver, the connect hook and the TLS context (``None``:
    the system's CA store). Tests swap all three; the node uses the defaults."""

    resolve: Resolver = system_resolve
    dial: Dial = direct
    tls: ssl.SSLContext | None = None


async def send(out: Outbound, target: Target, net: Network, limit: int) -> Reply:
    """One request, connected only to ``target``'s checked addresses; redirects are returned, not followed."""
    connector = aiohttp.TCPConnector(resolver=PinnedResolver(target, net.dial), use_dns_cache=False, force_close=True)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
        async with session.request(
            out.method, out.url, headers=out.headers, data=out.body, allow_redirects=False,
            ssl=net.tls if net.tls is not None else True,
        ) as response:
            location = response.headers.get("Location")
            if response.status in REDIRECT_STATUSES and location:
                return Reply(response.status, location, b"")
            return Reply(response.status, None, await _read(response.content, limit))


async def follow(first: Outbound, job: Job, net: Network) -> Reply:
    """Send ``first`` and follow its redirects, each hop admitted before it connects."""
    out, secure = first, False
    for _ in range(MAX_REDIRECTS + 1):
        target = await admit(out.url, job.grants, net.resolve)
        secure = secure or out.url.scheme == "https"
        carried = hop_secrets(job.grants, target, downgraded=secure and out.url.scheme != "https")
        refuse_leaks(out.url, target, job.grants, carried)
        reply = await send(with_secrets(out, carried), target, net, job.limits.output_bytes)
        if reply.location is None:
            return reply
        out = next_hop(out, reply.status, reply.location)
    raise TooManyRedirects(f"more than {MAX_REDIRECTS} redirects")


def _secret_values(grants: Grants) -> dict[str, str]:
    return {**grants.secrets, **{name: secret.value for name, secret in grants.brokered.items()}}


def _answer(job: Job, reply: Reply, ms: float) -> Result:
    limit = job.limits.output_bytes
    truncated = len(reply.body) > limit
    body = redact(reply.body[:limit].decode("utf-8", "replace"), _secret_values(job.grants))
    text = json.dumps({"status": reply.status, "body": body})
    return Result(0, text, "", "node", ms, truncated=truncated, limit="output" if truncated else None)


def _failed(job: Job, message: str, ms: float, *, timed_out: bool = False) -> Result:
    stderr = redact(message, _secret_values(job.grants))
    return Result(1, "", stderr, "node", ms, timed_out=timed_out, limit="wall" if timed_out else None)


async def http_request(
    job: Job, resolve: Resolver = system_resolve, dial: Dial = direct, tls: ssl.SSLContext | None = None
) -> Result:
    """Run one ``http_request`` job; refusals and failures come back as exit code 1 with the reason."""
    watch = Stopwatch()
    first = parse_request(job.stdin)
    try:
        async with asyncio.timeout(job.limits.wall_seconds):
            reply = await follow(first, job, Network(resolve, dial, tls))
    except EgressDenied as exc:
        return _failed(job, f"egress denied: {exc}", watch.ms())
    except TooManyRedirects as exc:
        return _failed(job, f"http_request: {exc}", watch.ms())
    except TimeoutError:
        return _failed(job, "http_request timed out", watch.ms(), timed_out=True)
    except (aiohttp.ClientError, ValueError) as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, EgressDenied) else exc
        return _failed(job, f"http_request failed: {cause}", watch.ms())
    return _answer(job, reply, watch.ms())
