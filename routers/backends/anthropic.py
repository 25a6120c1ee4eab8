"""Adapter for Anthropic's Messages API: OpenAI chat completions in, OpenAI shapes out.

Serves the ``chat`` route (text, images, tools; stream and non-stream), and ``responses`` translated
over it (``routers/backends/responses.py``). ``base_url``
includes the version, e.g. ``https://api.anthropic.com/v1``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Any, ClassVar

import aiohttp
import orjson

from gateway.kernel.config import BackendSettings
from gateway.kernel.context import Reply, RequestContext, Usage
from gateway.kernel.errors import UnsupportedCapability, UpstreamError, UpstreamTimeout
from gateway.kernel.observability.metrics import Metrics
from routers.backends import responses
from routers.backends.anthropic_shapes import openai_error, to_chat_completion, to_messages_request
from routers.backends.anthropic_stream import StreamTranslator
from routers.backends.base import api_key_of
from routers.backends.openai import (
    KeyScrubber,
    StaleRetry,
    failure_body,
    failure_error,
    make_session,
    read_body,
)
from routers.needs import ALL, mask_of

API_VERSION = "2023-06-01"
_PASS_THROUGH_STATUSES = {400, 404, 413, 422}
_SSE = "text/event-stream"


class AnthropicBackend:
    offers: ClassVar[int] = mask_of(("text", "vision", "tools"), ALL)

    @classmethod
    def create(cls, settings: BackendSettings, metrics: Metrics) -> AnthropicBackend:
        return cls(settings, make_session(settings), metrics, api_key_of(settings))

    def __init__(
        self, settings: BackendSettings, session: aiohttp.ClientSession, metrics: Metrics, api_key: str | None
    ) -> None:
        self.name = settings.name
        self._base = settings.base_url.rstrip("/")
        self._session = session
        self._pool = StaleRetry(settings, session, metrics)
        self._metrics = metrics
        self._max_tokens = settings.default_max_tokens
        self._scrubber = KeyScrubber.of(api_key, settings.headers)
        headers = {"content-type": "application/json", "anthropic-version": API_VERSION, **settings.headers}
        if api_key:
            headers["x-api-key"] = api_key
        self._headers = headers

    async def send(self, ctx: RequestContext, upstream_model: str) -> Reply:
        if ctx.route == "responses":
            return await responses.over_chat(self._chat, ctx, upstream_model)
        if ctx.route != "chat":
            raise UnsupportedCapability(f"Backend {self.name!r} (Anthropic) serves chat completions and "
                                        "responses only.")
        return await self._chat(ctx, upstream_model)

    async def _chat(self, ctx: RequestContext, upstream_model: str) -> Reply:
        payload = orjson.dumps(to_messages_request(ctx.body, upstream_model, self._max_tokens))
        started = time.perf_counter()
        url = self._base + "/messages"
        resp = await self._pool.post(lambda session: session.post(url, data=payload, headers=self._headers))
        self._metrics.upstream_latency.labels(self.name, str(resp.status)).observe(
            time.perf_counter() - started
        )
        if resp.status >= 400:
            return await self._failure(resp)
        if resp.headers.get("content-type", "").startswith(_SSE):
            return await self._stream(resp, ctx)
        completion = to_chat_completion(self._document(await self._read(resp)))
        ctx.usage = Usage.from_json(completion["usage"])
        return Reply(body=orjson.dumps(completion))

    async def _stream(self, resp: aiohttp.ClientResponse, ctx: RequestContext) -> Reply:
        options = ctx.body.get("stream_options")
        translator = StreamTranslator(isinstance(options, dict) and options.get("include_usage") is True)
        first = b""
        try:
            while not first:
                chunk = await resp.content.readany()
                if not chunk:
                    raise UpstreamError(f"Backend {self.name!r} ended the stream before its first chunk.")
                first = translator.feed(chunk)
        except (TimeoutError, aiohttp.ClientError) as exc:
            resp.close()
            self._metrics.upstream_errors.labels(self.name, "stream_broken").inc()
            kind = UpstreamTimeout if isinstance(exc, asyncio.TimeoutError) else UpstreamError
            raise kind(f"Backend {self.name!r} broke off the stream before its first chunk.") from None
        except UpstreamError:
            resp.close()
            raise
        return Reply(stream=self._relay(resp, ctx, translator, first), media_type=_SSE)

    async def _relay(
        self, resp: aiohttp.ClientResponse, ctx: RequestContext, translator: StreamTranslator, first: bytes
    ) -> AsyncGenerator[bytes, None]:
        try:
            yield first
            async for chunk in resp.content.iter_any():
                out = translator.feed(chunk)
                if out:
                    yield out
            if not translator.done:
                yield (
                    b"data: "
                    + UpstreamError(f"Backend {self.name!r} ended the stream early.").body()
                    + b"\n\n"
                )
        except (TimeoutError, aiohttp.ClientError):
            self._metrics.upstream_errors.labels(self.name, "stream_broken").inc()
            yield b"data: " + UpstreamError(f"Backend {self.name!r} broke off the stream.").body() + b"\n\n"
        finally:
            ctx.usage = translator.usage
            resp.close()

    def _document(self, body: bytes) -> dict[str, Any]:
        try:
            doc: Any = orjson.loads(body)
        except orjson.JSONDecodeError:
            doc = None
        if not isinstance(doc, dict):
            raise UpstreamError(f"Backend {self.name!r} answered with something other than a message.")
        return doc

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes:
        return await read_body(resp, self.name, self._metrics)

    async def _failure(self, resp: aiohttp.ClientResponse) -> Reply:
        status = resp.status
        body = await failure_body(resp, self.name, self._metrics, self._scrubber)
        if status in _PASS_THROUGH_STATUSES:
            return Reply(status=status, body=openai_error(body))
        raise failure_error(
            self.name, 503 if status == 529 else status, body, resp.headers.get("retry-after")
        )

    async def ready(self) -> bool:
        try:
            async with asyncio.timeout(2.0):
                async with self._session.get(self._base + "/models", headers=self._headers) as resp:
                    return resp.status < 500
        except (TimeoutError, aiohttp.ClientError):
            return False

    async def aclose(self) -> None:
        await self._pool.aclose()
