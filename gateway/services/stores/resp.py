"""A lean, pipelined Redis client for the request path.

redis-py spends far more CPU per command (a pool checkout, a timeout scope, packing and parsing in
layers) than the one ``EVALSHA`` a rate-limit check needs. This client keeps one connection, writes
each command as soon as it is issued, and matches replies to callers in order from a single reader
task (parsed by hiredis). A caller that times out stops waiting; its reply is still read off the
wire and dropped, so ordering is never lost. A broken connection fails everything in flight and is
reopened by the next command. Errors are redis-py's own classes, so callers catch one family.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Arg = bytes | str | int | float


def pack(args: tuple[Arg, ...]) -> bytes:
    """RESP2 array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class RespClient:
    def __init__(self, url: str, *, timeout_s: float, connect_timeout_s: float) -> None:
        self._target = _parse(url)
        self._timeout = timeout_s
        self._connect_timeout = connect_timeout_s
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._connecting = asyncio.Lock()

    async def execute(self, *args: Arg) -> Any:
        writer = self._writer if self._writer is not None else await self._connect()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append(future)
        writer.write(pack(args))
        timer = loop.call_later(self._timeout, _expire, future, self._timeout)
        try:
            return await future
        finally:
            timer.cancel()

    async def _connect(self) -> asyncio.StreamWriter:
        async with self._connecting:
            if self._writer is not None:
                return self._writer
            try:
                async with asyncio.timeout(self._connect_timeout):
                    reader, writer = await self._open()
                    await self._handshake(reader, writer)
            except (OSError, TimeoutError) as exc:
                raise RedisConnectionError(f"cannot reach Redis: {type(exc).__name__}") from None
            self._writer = writer
            self._reader_task = asyncio.create_task(self._read_replies(reader, writer))
            return writer

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        kind, where, _, _ = self._target
        if kind == "unix":
            return await asyncio.open_unix_connection(where)
        host, _, port = where.rpartition(":")
        return await asyncio.open_connection(host or "127.0.0.1", int(port or 6379))

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, _, password, db = self._target
        commands: list[tuple[Arg, ...]] = []
        if password:
            commands.append(("AUTH", password))
        if db:
            commands.append(("SELECT", db))
        parser = hiredis.Reader()
        for command in commands:
            writer.write(pack(command))
            reply: Any = False
            while reply is False:
                parser.feed(await reader.read(4096) or b"")
                reply = parser.gets()
            if isinstance(reply, hiredis.ReplyError):
                raise OSError(f"Redis refused {command[0]!r}")

    async def _read_replies(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = hiredis.Reader()
        try:
            while data := await reader.read(65536):
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    self._deliver(reply)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._drop(writer)

    def _deliver(self, reply: Any) -> None:
        future = self._pending.popleft()
        if future.done():  # its caller timed out
            return
        if isinstance(reply, hiredis.ReplyError):
            text = str(reply)
            future.set_exception(NoScriptError(text) if text.startswith("NOSCRIPT") else ResponseError(text))
        else:
            future.set_result(reply)

    def _drop(self, writer: asyncio.StreamWriter) -> None:
        if self._writer is writer:
            self._writer = None
        writer.close()
        while self._pending:
            future = self._pending.popleft()
            if not future.done():
                future.set_exception(RedisConnectionError("the connection to Redis broke"))

    async def aclose(self) -> None:
        task, self._reader_task = self._reader_task, None
        if self._writer is not None:
            self._drop(self._writer)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _expire(future: asyncio.Future[Any], timeout_s: float) -> None:
    if not future.done():
        future.set_exception(RedisTimeoutError(f"Redis did not answer in {timeout_s * 1000:.0f} ms"))


def _parse(url: str) -> tuple[str, str, str | None, int]:
    """(kind, address, password, db) from ``redis://[:pw@]host:port/db`` or ``unix:///path?db=N``."""
    parts = urlparse(url)
    password = unquote(parts.password) if parts.password else None
    if parts.scheme == "unix":
        db = int(parse_qs(parts.query).get("db", ["0"])[0])
        return "unix", parts.path, password, db
    if parts.scheme not in ("redis", ""):
        raise ValueError(f"unsupported Redis URL scheme {parts.scheme!r} (use redis:// or unix://)")
    db = int(parts.path.lstrip("/") or 0)
    return "tcp", f"{parts.hostname or '127.0.0.1'}:{parts.port or 6379}", password, db
