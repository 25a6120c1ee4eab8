"""A Redis client with short timeouts: a slow Redis must degrade, never hang a request."""

from __future__ import annotations

import redis.asyncio as aioredis

from gateway.kernel.config.sections.stores import RedisSettings


def connect_redis(settings: RedisSettings) -> aioredis.Redis | None:
    """``None`` when no URL is set (the embedded default keeps that state in process)."""
    if settings.url is None:
        return None
    return aioredis.Redis.from_url(
        settings.url.get_secret_value(),
        socket_timeout=settings.socket_timeout_ms / 1000,
        socket_connect_timeout=settings.connect_timeout_ms / 1000,
        retry_on_timeout=False,
        health_check_interval=0,
        decode_responses=False,
    )
