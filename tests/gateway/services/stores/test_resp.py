"""The lean pipelined Redis client against a real redis-server."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.services.stores.resp import RespClient, _parse, pack


def test_pack_is_resp2() -> None:
    assert pack(("SET", "k", 1)) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n1\r\n"


def test_urls() -> None:
    assert _parse("redis://:pw@db.local:6380/2") == ("tcp", "db.local:6380", "pw", 2)
    assert _parse("unix:///run/redis.sock?db=3") == ("unix", "/run/redis.sock", None, 3)
    with pytest.raises(ValueError):
        _parse("rediss://host")


async def test_concurrent_commands_get_their_own_replies(redis_url: str) -> None:
    client = RespClient(redis_url, timeout_s=1, connect_timeout_s=1)
    prefix = uuid.uuid4().hex
    await asyncio.gather(*(client.execute("SET", f"{prefix}:{i}", i) for i in range(200)))
    values = await asyncio.gather(*(client.execute("GET", f"{prefix}:{i}") for i in range(200)))
    assert values == [str(i).encode() for i in range(200)]
    with pytest.raises(ResponseError):
        await client.execute("INCR", "not", "a", "command")
    assert await client.execute("PING") == b"PONG"
    await client.aclose()


async def test_a_timed_out_reply_does_not_shift_the_next_one(redis_url: str) -> None:
    client = RespClient(redis_url, timeout_s=0.05, connect_timeout_s=1)
    with pytest.raises(RedisTimeoutError):
        await client.execute("BLPOP", f"empty:{uuid.uuid4().hex}", "0.2")
    await asyncio.sleep(0.25)
    assert await client.execute("ECHO", "mine") == b"mine"
    await client.aclose()


async def test_a_broken_connection_fails_in_flight_and_reconnects(redis_url: str) -> None:
    client = RespClient(redis_url, timeout_s=1, connect_timeout_s=1)
    own_id = await client.execute("CLIENT", "ID")
    waiting = asyncio.ensure_future(client.execute("BLPOP", f"empty:{uuid.uuid4().hex}", "5"))
    await asyncio.sleep(0.05)
    killer = RespClient(redis_url, timeout_s=1, connect_timeout_s=1)
    assert await killer.execute("CLIENT", "KILL", "ID", own_id) == 1
    with pytest.raises(RedisConnectionError):
        await waiting
    assert await client.execute("PING") == b"PONG"  # a new connection
    await killer.aclose()
    await client.aclose()


async def test_unreachable_redis_is_a_connection_error() -> None:
    client = RespClient("redis://127.0.0.1:9", timeout_s=0.05, connect_timeout_s=0.1)
    with pytest.raises(RedisConnectionError):
        await client.execute("PING")
