"""The cache stage in process, with principals set as the authn stage would set them."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import redis.asyncio as aioredis

from gateway.kernel.config.sections.cache import CacheSettings
from middleware.cache.metrics import CacheMetrics
from middleware.cache.probe import Corpus
from middleware.cache.stage import CacheStage
from middleware.cache.store import CacheStore, MemoryStore, RedisStore
from tests.middleware.cache.support import Backend, chat, context, finish, services


async def stage(store: CacheStore | None = None, **settings: object) -> CacheStage:
    s = await services()
    cache = CacheSettings.model_validate(settings)
    return CacheStage(cache, store or MemoryStore(100), Corpus(s.vector_stores, s.settings.rag), None,
                      CacheMetrics(s.metrics.registry))


async def call(s: CacheStage, backend: Backend, body: dict[str, object], tenant: str | None = None,
               headers: dict[str, str] | None = None) -> tuple[str, bytes]:
    ctx = context(body, tenant, headers=headers)
    reply = await s(ctx, backend)
    await finish(ctx)
    return ctx.response_headers.get("x-llmops-cache", ""), reply.body


async def test_two_tenants_with_the_same_prompt_never_share_an_entry() -> None:
    s, backend = await stage(), Backend()
    assert (await call(s, backend, chat(), "acme"))[0] == "miss"
    assert (await call(s, backend, chat(), "acme"))[0] == "hit"
    result, body = await call(s, backend, chat(), "globex")
    assert result == "miss" and b"answer 2" in body
    assert (await call(s, backend, chat(), None))[0] == "miss"  # no principal = tenant "default"
    assert backend.calls == 3


async def test_no_cache_refreshes_and_no_store_skips() -> None:
    s, backend = await stage(), Backend()
    await call(s, backend, chat())
    assert (await call(s, backend, chat(), headers={"cache-control": "no-cache"}))[0] == "bypass"
    result, body = await call(s, backend, chat())
    assert result == "hit" and b"answer 2" in body  # the refreshed answer was stored
    await call(s, backend, chat("other"), headers={"cache-control": "no-store"})
    assert (await call(s, backend, chat("other")))[0] == "miss"


async def test_per_key_rules_and_nondeterministic_opt_in() -> None:
    s, backend = await stage(keys={"key-acme": {"nondeterministic": True}}), Backend()
    sampled = chat(temperature=0.8)
    assert (await call(s, backend, sampled, "globex"))[0] == "bypass"
    await call(s, backend, sampled, "acme")
    assert (await call(s, backend, sampled, "acme"))[0] == "hit"
    off = await stage(tenants={"acme": {"enabled": False}})
    assert (await call(off, backend, chat(), "acme"))[0] == ""


async def test_unfinished_answers_are_not_stored() -> None:
    class Truncated(Backend):
        async def __call__(self, ctx):  # type: ignore[no-untyped-def]
            reply = await super().__call__(ctx)
            reply.body = reply.body.replace(b'"finish_reason":"stop"', b'"finish_reason":null')
            return reply

    s, backend = await stage(), Truncated()
    await call(s, backend, chat())
    assert (await call(s, backend, chat()))[0] == "miss"


async def test_redis_down_is_a_bypass_never_an_error(tmp_path: object) -> None:
    dead = aioredis.Redis.from_url(f"unix://{tmp_path}/none.sock", socket_timeout=0.05)
    s, backend = await stage(RedisStore(dead)), Backend()
    assert (await call(s, backend, chat()))[0] == "bypass"
    assert (await call(s, backend, chat()))[0] == "bypass"  # marked down: no second timeout
    assert backend.calls == 2
    await dead.aclose()


async def test_redis_store_round_trip(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    s, backend = await stage(RedisStore(client)), Backend()
    await call(s, backend, chat("redis"), "acme")
    assert (await call(s, backend, chat("redis"), "acme"))[0] == "hit"
    keys = await client.keys("llmops:cache:v1:*")
    assert keys
    for k in keys:
        assert await client.ttl(k) > 0
    await client.aclose()


async def test_route_and_key_ttls_follow_precedence() -> None:
    from gateway.kernel.config.sections.cache import CacheSettings
    from middleware.cache.rules import resolve
    from tests.middleware.cache.support import context

    settings = CacheSettings.model_validate({"ttl_s": 100, "routes": {"chat": {"ttl_s": 50}},
                                             "tenants": {"acme": {"ttl_s": 20, "semantic": True}},
                                             "keys": {"key-acme": {"ttl_s": 5}}})
    assert resolve(settings, context(chat(), None)).ttl_s == 50  # type: ignore[union-attr]
    rule = resolve(settings, context(chat(), "acme"))
    assert rule is not None and rule.ttl_s == 5 and rule.semantic
    assert resolve(settings, context({"model": "m", "input": "x"}, None, route="embeddings")) is None


async def test_a_stream_cut_off_by_the_client_is_not_stored() -> None:
    from gateway.kernel.context import Reply
    from tests.middleware.cache.support import context

    async def events() -> AsyncGenerator[bytes, None]:
        yield b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}\n\n'
        yield b'data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
        yield b"data: [DONE]\n\n"

    async def streaming(ctx: Any) -> Reply:
        return Reply(stream=events(), media_type="text/event-stream")

    s = await stage()
    cut = context(chat(stream=True))
    reply = await s(cut, streaming)
    assert reply.stream is not None
    await reply.stream.__anext__()
    await reply.stream.aclose()
    await finish(cut)
    again = context(chat(stream=True))
    reply = await s(again, streaming)
    assert again.response_headers["x-llmops-cache"] == "miss"
    assert reply.stream is not None
    assert [chunk async for chunk in reply.stream][-1] == b"data: [DONE]\n\n"
    await finish(again)
    replayed = context(chat(stream=True))
    hit = await s(replayed, streaming)
    assert replayed.response_headers["x-llmops-cache"] == "hit"
    assert hit.media_type == "text/event-stream" and b'"Hel"' in hit.body
