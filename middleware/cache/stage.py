"""The "cache" stage: answer from the cache, or call on and store the complete answer.

Header ``x-llmops-cache: hit|miss|bypass|semantic-hit`` (plus ``x-llmops-cache-similarity`` on a
semantic hit). ``Cache-Control: no-store`` or ``"llmops": {"cache": "bypass"}`` skip the cache;
``no-cache`` skips the lookup but stores the fresh answer. A failing store is a bypass and a metric.
Writes happen after the response is sent (``ctx.on_complete``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from gateway.kernel.chain import Handler
from gateway.kernel.config.sections.cache import CacheSettings
from gateway.kernel.context import Reply, RequestContext, tenant_of
from gateway.services.vectorstores.errors import StoreUnavailable
from middleware.cache.entries import StreamCapture, cacheable_json, replay
from middleware.cache.keys import exact_key
from middleware.cache.metrics import CacheMetrics
from middleware.cache.probe import Corpus, Probe, SemanticCache
from middleware.cache.rules import Rule, resolve
from middleware.cache.store import CacheStore, CacheUnavailable

if TYPE_CHECKING:
    from gateway.services.bundle import Services

HEADER = "x-llmops-cache"
SIMILARITY_HEADER = "x-llmops-cache-similarity"
Mode = Literal["use", "refresh", "bypass"]
_SAMPLED = ("chat", "responses")  # routes whose answers are sampled unless temperature is 0


class CacheStage:
    name = "cache"

    def __init__(self, settings: CacheSettings, store: CacheStore, corpus: Corpus, semantic: SemanticCache | None,
                 metrics: CacheMetrics) -> None:
        self._settings = settings
        self._store = store
        self._corpus = corpus
        self._semantic = semantic
        self._metrics = metrics

    async def __call__(self, ctx: RequestContext, call_next: Handler) -> Reply:
        rule = resolve(self._settings, ctx)
        if rule is None:
            return await call_next(ctx)
        mode = _mode(ctx, rule)
        if mode == "bypass":
            return await self._bypass(ctx, call_next)
        try:
            corpus = await self._corpus.version(ctx)
            key = exact_key(tenant_of(ctx.principal), ctx.route, ctx.model, corpus, ctx.body)
            entry = await self._store.get(key) if mode == "use" else None
        except (CacheUnavailable, StoreUnavailable) as exc:
            self._metrics.error(self._store.name, "get", exc)
            return await self._bypass(ctx, call_next)
        if entry is not None:
            return self._answer(ctx, entry, "hit")
        probe = await self._semantic.probe(ctx, corpus, rule) if self._semantic and rule.semantic else None
        if probe is not None and probe.key is not None and mode == "use":
            hit = await self._semantic_hit(ctx, probe)
            if hit is not None:
                return hit
        self._label(ctx, "miss" if mode == "use" else "bypass")  # refresh: not read, but stored
        return self._capture(ctx, await call_next(ctx), key, rule, probe)

    async def _bypass(self, ctx: RequestContext, call_next: Handler) -> Reply:
        self._label(ctx, "bypass")
        return await call_next(ctx)

    def _label(self, ctx: RequestContext, result: str) -> None:
        ctx.response_headers[HEADER] = result
        self._metrics.result(ctx.route, result)

    def _answer(self, ctx: RequestContext, entry: bytes, result: str) -> Reply:
        self._label(ctx, result)
        if not ctx.stream:
            return Reply(body=entry)
        include_usage = bool((ctx.body.get("stream_options") or {}).get("include_usage"))
        # The whole replay is known: one SSE body, no relay task per request.
        return Reply(body=b"".join(replay(entry, include_usage)), media_type="text/event-stream",
                     headers={"cache-control": "no-cache"})

    async def _semantic_hit(self, ctx: RequestContext, probe: Probe) -> Reply | None:
        assert probe.key is not None
        try:
            entry = await self._store.get(probe.key)
        except CacheUnavailable as exc:
            self._metrics.error(self._store.name, "get", exc)
            return None
        if entry is None:
            return None
        ctx.response_headers[SIMILARITY_HEADER] = f"{probe.similarity:.4f}"
        return self._answer(ctx, entry, "semantic-hit")

    def _capture(self, ctx: RequestContext, reply: Reply, key: str, rule: Rule, probe: Probe | None) -> Reply:
        if reply.status != 200 or _mode(ctx, rule) == "bypass":
            return reply
        if reply.stream is not None:
            if ctx.route != "chat":
                return reply
            capture = StreamCapture(reply.stream, self._settings.max_entry_bytes)

            async def store_stream(_: RequestContext) -> None:
                if capture.entry is not None:
                    await self._put(key, capture.entry, rule, probe)

            ctx.on_complete(store_stream)
            return replace(reply, stream=capture.stream())
        body = reply.body
        if len(body) <= self._settings.max_entry_bytes and cacheable_json(ctx.route, body):

            async def store_body(_: RequestContext) -> None:
                await self._put(key, body, rule, probe)

            ctx.on_complete(store_body)
        return reply

    async def _put(self, key: str, entry: bytes, rule: Rule, probe: Probe | None) -> None:
        try:
            await self._store.set(key, entry, rule.ttl_s)
        except CacheUnavailable as exc:
            self._metrics.error(self._store.name, "set", exc)
            return
        if probe is not None and self._semantic is not None:
            await self._semantic.remember(probe, key, rule.ttl_s)


def _mode(ctx: RequestContext, rule: Rule) -> Mode:
    control = ctx.headers.get("cache-control", "").lower()
    wanted = ctx.extension.cache
    if "no-store" in control or wanted == "bypass":
        return "bypass"
    if ctx.route in _SAMPLED and not rule.nondeterministic and ctx.body.get("temperature") != 0:
        return "bypass"  # a sampled answer is one of many; caching it would freeze the dice
    return "refresh" if "no-cache" in control or wanted == "refresh" else "use"


def build(services: Services) -> CacheStage:
    from middleware.cache.factory import make_stage

    return make_stage(services)
