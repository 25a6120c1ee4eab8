"""Adapter for OpenAI-compatible servers (OpenAI, vLLM, Ollama, llama.cpp server, TGI, ...)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar

import aiohttp
import orjson

from gateway.kernel.config import BackendSettings
from gateway.kernel.context import Reply, RequestContext, Usage
from gateway.kernel.errors import (
    GatewayError,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.kernel.observability.metrics import Metrics
from gateway.kernel.sse import UsageSniffer
from routers.backends import responses
from routers.backends.base import UPSTREAM_PATHS, api_key_of
from routers.needs import ALL

_PASS_THROUGH_STATUSES = {400, 404, 409, 413, 415, 422}
_SSE = "text/event-stream"
_GRAM = 8  # a run this long of a secret's characters is a quote of the secret (and secrets shorter are placeholders)
_WORD = re.compile(r"[\w\-+/=~*.\u2026]+")  # a key-like run of text: letters, digits, _-+/=~, masks (* . …)
_MASK = re.compile(r"\*+|\.{3,}|\u2026")  # how servers hide the middle of a key: sk-abc***wxyz, sk-...wxyz
_SENSITIVE_HEADER = re.compile(r"auth|key|token|secret", re.IGNORECASE)
REDACTED = "[redacted]"


class UpstreamRateLimited(UpstreamError):
    status = 429
    error_type = "requests"
    default_code = "rate_limit_exceeded"


class KeyScrubber:
    """Takes the gateway's own upstream secrets out of what a backend says, whatever the status, before
    the client or a log sees it: the key in full, any run of 8 or more of its characters, and masked
    quotes whose visible ends are the key's (OpenAI's ``sk-abc***wxyz``, ``sk-proj-****...wxyz``).
    A JSON body is scrubbed string by string, so it stays valid JSON. Secrets shorter than 8 characters
    are placeholders (vLLM's ``EMPTY``) and left alone."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        self._secrets = tuple({s for s in secrets if s and len(s) >= _GRAM})
        self._grams = frozenset(s[i : i + _GRAM] for s in self._secrets for i in range(len(s) - _GRAM + 1))

    @classmethod
    def of(cls, api_key: str | None, headers: Mapping[str, str]) -> KeyScrubber:
        """For a backend's key and the credentials among its configured headers (``Bearer X`` → ``X``)."""
        sent = [part for name, value in headers.items() if _SENSITIVE_HEADER.search(name) for part in value.split()]
        return cls([api_key, *sent])

    def body(self, raw: bytes) -> bytes:
        """``raw`` without the secrets (the same object when there was nothing to take out)."""
        if not self._secrets or not raw:
            return raw
        try:
            doc: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            text = raw.decode("utf-8", "surrogateescape")
            clean = self.text(text)
            return raw if clean == text else clean.encode("utf-8", "surrogateescape")
        clean_doc = self._document(doc)
        return raw if clean_doc == doc else orjson.dumps(clean_doc)

    def text(self, text: str) -> str:
        return _WORD.sub(self._word, text)

    def _word(self, match: re.Match[str]) -> str:
        word = match.group()
        core = word.rstrip(".")  # a sentence's full stop is not part of the quote
        return REDACTED + word[len(core) :] if self._quotes(core) else word

    def _document(self, doc: Any) -> Any:
        if isinstance(doc, str):
            return self.text(doc)
        if isinstance(doc, list):
            return [self._document(item) for item in doc]
        if isinstance(doc, dict):
            return {self.text(k): self._document(v) for k, v in doc.items()}
        return doc

    def _quotes(self, word: str) -> bool:
        """Whether ``word`` holds a run of a secret, or is a masked quote consistent with one."""
        if any(word[i : i + _GRAM] in self._grams for i in range(len(word) - _GRAM + 1)):
            return True
        parts = _MASK.split(word)
        if len(parts) < 2:
            return False
        head, tail = parts[0], parts[-1]
        return len(head) + len(tail) >= 4 and any(s.startswith(head) and s.endswith(tail) for s in self._secrets)


def make_session(settings: BackendSettings) -> aiohttp.ClientSession:
    """A keep-alive pool per backend; must be called inside the running loop."""
    t = settings.timeouts
    connector = aiohttp.TCPConnector(limit=settings.max_connections, keepalive_timeout=settings.keepalive_s,
                                     ttl_dns_cache=300)
    timeout = aiohttp.ClientTimeout(total=t.total_s, sock_connect=t.connect_s, sock_read=t.first_byte_s)
    return aiohttp.ClientSession(connector=connector, timeout=timeout, raise_for_status=False)


class OpenAIBackend:
    offers: ClassVar[int] = ALL

    @classmethod
    def create(cls, settings: BackendSettings, metrics: Metrics) -> OpenAIBackend:
        return cls(settings, make_session(settings), metrics, api_key_of(settings))

    def __init__(
        self,
        settings: BackendSettings,
        session: aiohttp.ClientSession,
        metrics: Metrics,
        api_key: str | None,
    ) -> None:
        self.name = settings.name
        self._settings = settings
        self._base = settings.base_url.rstrip("/")
        self._session = session
        self._pool = StaleRetry(settings, session, metrics)
        self._metrics = metrics
        self._scrubber = KeyScrubber.of(api_key, settings.headers)
        headers = {"content-type": "application/json", **settings.headers}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._json_headers = headers
        self._form_headers = {k: v for k, v in headers.items() if k != "content-type"}
        self._upstream_latency = metrics.upstream_latency

    async def send(self, ctx: RequestContext, upstream_model: str) -> Reply:
        if ctx.route == "responses":
            adapter = responses.native if self._settings.responses == "native" else responses.over_chat
            return await adapter(self._send, ctx, upstream_model)
        return await self._send(ctx, upstream_model)

    async def _send(self, ctx: RequestContext, upstream_model: str) -> Reply:
        url = self._base + UPSTREAM_PATHS[ctx.route]
        started = time.perf_counter()
        resp = await self._post(url, ctx, upstream_model)
        self._upstream_latency.labels(self.name, str(resp.status)).observe(time.perf_counter() - started)
        if resp.status >= 400:
            return await self._failure(resp)
        content_type = resp.headers.get("content-type", "application/json")
        if content_type.startswith(_SSE):
            first = await self._first_chunk(resp)
            return Reply(stream=self._relay(resp, ctx, first), media_type=_SSE)
        body = await self._read(resp)
        if content_type.startswith("application/json"):
            ctx.usage = _usage_of(body)
        return Reply(status=resp.status, body=body, media_type=content_type)

    async def _post(self, url: str, ctx: RequestContext, upstream_model: str) -> aiohttp.ClientResponse:
        return await self._pool.post(lambda session: self._post_on(session, url, ctx, upstream_model))

    async def _post_on(self, session: aiohttp.ClientSession, url: str, ctx: RequestContext,
                       upstream_model: str) -> aiohttp.ClientResponse:
        if ctx.files:
            return await session.post(url, data=self._form(ctx, upstream_model), headers=self._form_headers)
        payload = orjson.dumps({**ctx.body, "model": upstream_model})
        return await session.post(url, data=payload, headers=self._json_headers)

    def _form(self, ctx: RequestContext, upstream_model: str) -> aiohttp.FormData:
        form = aiohttp.FormData()
        for key, value in ctx.body.items():
            if key == "model":
                continue
            for item in value if isinstance(value, list) else [value]:
                form.add_field(key, str(item))
        form.add_field("model", upstream_model)
        for f in ctx.files:
            form.add_field(f.field, f.data, filename=f.filename, content_type=f.content_type)
        return form

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes:
        return await read_body(resp, self.name, self._metrics)

    async def _failure(self, resp: aiohttp.ClientResponse) -> Reply:
        status = resp.status
        body = await failure_body(resp, self.name, self._metrics, self._scrubber)
        if status in _PASS_THROUGH_STATUSES and _is_envelope(body):
            return Reply(status=status, body=body)
        raise failure_error(self.name, status, body, resp.headers.get("retry-after"))

    async def _first_chunk(self, resp: aiohttp.ClientResponse) -> bytes:
        """Wait for the stream's first bytes, so a stream that fails before them can be retried."""
        try:
            first = await resp.content.readany()
        except (TimeoutError, aiohttp.ServerTimeoutError):
            resp.close()
            self._metrics.upstream_errors.labels(self.name, "timeout").inc()
            raise UpstreamTimeout(f"Backend {self.name!r} sent no first chunk in time.") from None
        except aiohttp.ClientError as exc:
            resp.close()
            self._metrics.upstream_errors.labels(self.name, "stream_broken").inc()
            raise UpstreamError(
                f"Backend {self.name!r} broke off the stream: {type(exc).__name__}."
            ) from None
        if not first:
            resp.close()
            self._metrics.upstream_errors.labels(self.name, "stream_broken").inc()
            raise UpstreamError(f"Backend {self.name!r} ended the stream before its first chunk.")
        return first

    async def _relay(
        self, resp: aiohttp.ClientResponse, ctx: RequestContext, first: bytes
    ) -> AsyncGenerator[bytes, None]:
        sniffer = UsageSniffer()
        finished = False
        try:
            sniffer.feed(first)
            yield first
            async for chunk in resp.content.iter_any():
                sniffer.feed(chunk)
                yield chunk
            finished = True
        except (TimeoutError, aiohttp.ClientError) as exc:
            reason = "timeout" if isinstance(exc, asyncio.TimeoutError) else "stream_broken"
            self._metrics.upstream_errors.labels(self.name, reason).inc()
            err = UpstreamError(f"Backend {self.name!r} broke off the stream ({reason}).")
            yield b"data: " + err.body() + b"\n\n"
        finally:
            ctx.usage = sniffer.usage
            if ctx.usage is not None and ctx.backend:
                self._metrics.streamed_tokens.labels(ctx.route, self.name).inc(ctx.usage.completion_tokens)
            if finished:
                resp.release()
            else:
                resp.close()

    async def ready(self) -> bool:
        try:
            async with asyncio.timeout(2.0):
                async with self._session.get(self._base + "/models", headers=self._form_headers) as resp:
                    return resp.status < 500
        except (TimeoutError, aiohttp.ClientError):
            return False

    async def aclose(self) -> None:
        await self._pool.aclose()


# What a reused connection that the server closed while idle looks like (before any response byte).
STALE_CONNECTION = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)


class StaleRetry:
    """Sends on the pooled session; a request that failed on a reused connection the server had closed
    while idle (nothing received yet) is sent once more on a fresh connection, counted in
    ``llmops_upstream_errors{reason="stale_connection_retried"}``. Shared by the backend adapters."""

    def __init__(self, settings: BackendSettings, session: aiohttp.ClientSession, metrics: Metrics) -> None:
        self._name = settings.name
        self._limit = settings.max_connections
        self._session = session
        self._fresh: aiohttp.ClientSession | None = None
        self._metrics = metrics

    async def post(self, send: Callable[[aiohttp.ClientSession], Awaitable[aiohttp.ClientResponse]]
                   ) -> aiohttp.ClientResponse:
        with upstream_errors(self._name, self._metrics):
            try:
                return await send(self._session)
            except STALE_CONNECTION as exc:
                if isinstance(exc, aiohttp.ClientConnectorError):
                    raise  # never connected: unreachable, not stale
                self._metrics.upstream_errors.labels(self._name, "stale_connection_retried").inc()
                return await send(self._fresh_session())

    def _fresh_session(self) -> aiohttp.ClientSession:
        """A session that never reuses a connection, for the one retry after a stale one."""
        if self._fresh is None:
            connector = aiohttp.TCPConnector(force_close=True, limit=self._limit)
            self._fresh = aiohttp.ClientSession(connector=connector, timeout=self._session.timeout,
                                                raise_for_status=False)
        return self._fresh

    async def aclose(self) -> None:
        await self._session.close()
        if self._fresh is not None:
            await self._fresh.close()


@contextlib.contextmanager
def upstream_errors(name: str, metrics: Metrics) -> Iterator[None]:
    """Translate aiohttp's errors (sending, or reading a body) into the gateway's ``UpstreamError`` tree."""
    try:
        yield
    except aiohttp.ClientConnectorError:
        metrics.upstream_errors.labels(name, "connect").inc()
        raise UpstreamUnavailable(f"Backend {name!r} is unreachable.") from None
    except (TimeoutError, aiohttp.ServerTimeoutError):
        metrics.upstream_errors.labels(name, "timeout").inc()
        raise UpstreamTimeout(f"Backend {name!r} did not answer in time.") from None
    except aiohttp.ClientError as exc:
        metrics.upstream_errors.labels(name, "protocol").inc()
        raise UpstreamError(f"Backend {name!r} failed: {type(exc).__name__}.") from None


async def read_body(resp: aiohttp.ClientResponse, name: str, metrics: Metrics) -> bytes:
    """The whole body, released to the pool; a timeout is a 504, a broken body a 502."""
    try:
        with upstream_errors(name, metrics):
            return await resp.read()
    finally:
        resp.release()


async def failure_body(
    resp: aiohttp.ClientResponse, name: str, metrics: Metrics, scrubber: KeyScrubber
) -> bytes:
    """An error response's body (empty if even that fails) without the gateway's secrets, counted by status."""
    try:
        body = await resp.read()
    except (TimeoutError, aiohttp.ClientError):
        body = b""
    finally:
        resp.release()
    metrics.upstream_errors.labels(name, str(resp.status)).inc()
    return scrubber.body(body)


def _usage_of(body: bytes) -> Usage | None:
    if b'"usage"' not in body:
        return None
    try:
        doc: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return Usage.from_json(doc.get("usage")) if isinstance(doc, dict) else None


def _is_envelope(body: bytes) -> bool:
    try:
        doc: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(doc, dict) and isinstance(doc.get("error"), dict)


def _upstream_message(body: bytes) -> str:
    try:
        doc: Any = orjson.loads(body)
        message = doc["error"]["message"]
        return str(message)[:300]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return ""


def failure_error(name: str, status: int, body: bytes, retry_after: str | None) -> GatewayError:
    headers = {"retry-after": retry_after} if retry_after else {}
    if status in (401, 403):
        # Never relay the upstream's words here: they can quote the gateway's own key.
        return UpstreamError(f"Backend {name!r} rejected the gateway's credentials.", code="upstream_auth")
    detail = _upstream_message(body)
    suffix = f": {detail}" if detail else "."
    if status == 429:
        return UpstreamRateLimited(f"Backend {name!r} is rate limiting{suffix}", headers=headers)
    if status == 503:
        return UpstreamUnavailable(f"Backend {name!r} is unavailable{suffix}", headers=headers)
    if status == 504 or status == 408:
        return UpstreamTimeout(f"Backend {name!r} timed out{suffix}", headers=headers)
    return UpstreamError(f"Backend {name!r} answered {status}{suffix}", headers=headers)
