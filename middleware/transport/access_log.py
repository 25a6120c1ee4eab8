"""One structured access-log line and the request metrics per exchange.

It logs what the transport and the chain learned (route, model, backend, status, tokens,
durations); never prompt text, never headers that may carry secrets.
"""

from __future__ import annotations

import time

from prometheus_client.metrics import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.kernel.observability.exchange import exchange_of
from gateway.kernel.observability.logging import JsonLog
from gateway.kernel.observability.metrics import Metrics


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, log: JsonLog, metrics: Metrics, *, enabled: bool = True) -> None:
        self.app = app
        self._log = log
        self._metrics = metrics
        self._enabled = enabled
        # (route, backend, status) → labelled children; the label sets are few and bounded.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._token_children: dict[str, tuple[Counter, Counter]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0
        first_byte = 0.0

        async def observe(message: Message) -> None:
            nonlocal status, first_byte
            if message["type"] == "http.response.start":
                status = message["status"]
                first_byte = time.perf_counter()
            await send(message)

        metrics = self._metrics
        in_flight = metrics.in_flight
        in_flight.inc()
        metrics.serving += 1
        try:
            await self.app(scope, receive, observe)
        except BaseException:
            status = status or 500
            raise
        finally:
            in_flight.dec()
            metrics.serving -= 1
            self._record(scope, status, first_byte)

    def _series(self, route: str, backend: str, status: int) -> tuple[Counter, Histogram]:
        key = (route, backend, status)
        found = self._children.get(key)
        if found is None:
            labels = (route, backend, str(status))
            found = (self._metrics.requests.labels(*labels), self._metrics.latency.labels(*labels))
            self._children[key] = found
        return found

    def _tokens(self, backend: str) -> tuple[Counter, Counter]:
        found = self._token_children.get(backend)
        if found is None:
            tokens = self._metrics.tokens
            found = (tokens.labels(backend, "prompt"), tokens.labels(backend, "completion"))
            self._token_children[backend] = found
        return found

    def _record(self, scope: Scope, status: int, first_byte: float) -> None:
        ex = exchange_of(scope)
        now = time.perf_counter()
        duration = now - ex.started
        ctx = ex.ctx
        backend = (ctx.backend if ctx else None) or "none"
        counter, histogram = self._series(ex.route, backend, status)
        counter.inc()
        histogram.observe(duration, {"request_id": ex.request_id})
        usage = ctx.usage if ctx is not None else None
        if usage is not None:
            prompt, completion = self._tokens(backend)
            prompt.inc(usage.prompt_tokens)
            completion.inc(usage.completion_tokens)
        if not self._enabled:
            return
        fields: dict[str, object] = {
            "request_id": ex.request_id,
            "method": scope["method"],
            "path": scope["path"],
            "route": ex.route,
            "status": status,
            "duration_ms": round(duration * 1000, 3),
            "ttfb_ms": round((first_byte - ex.started) * 1000, 3) if first_byte else None,
        }
        if ctx is not None:
            fields["model"] = ctx.model
            fields["backend"] = backend
            fields["stream"] = ctx.stream
            if ctx.principal is not None:
                fields["tenant"] = ctx.principal.tenant
                fields["key_id"] = ctx.principal.key_id
            if ctx.usage is not None:
                fields["prompt_tokens"] = ctx.usage.prompt_tokens
                fields["completion_tokens"] = ctx.usage.completion_tokens
        if ex.error_code:
            fields["error"] = ex.error_code
        self._log.event("info", "request", **fields)
