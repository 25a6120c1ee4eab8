"""Run a host process with capped output and a wall-clock deadline (used by the bwrap driver)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from executors.errors import SandboxError

CHUNK = 65536


@dataclass(frozen=True, slots=True)
class Captured:
    returncode: int
    stdout: bytes
    stderr: bytes
    truncated: bool
    timed_out: bool


async def _read_capped(stream: asyncio.StreamReader, limit: int, overflow: asyncio.Event) -> bytes:
    parts: list[bytes] = []
    size = 0
    while chunk := await stream.read(CHUNK):
        if size <= limit:
            parts.append(chunk)
        size += len(chunk)
        if size > limit:
            overflow.set()
    return b"".join(parts)[: limit + 1]


async def run_capped(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    stdin: bytes,
    output_limit: int,
    wall_seconds: float,
    preexec: Callable[[], None] | None = None,
    pass_fds: Sequence[int] = (),
) -> Captured:
    """Run ``argv`` to completion; kill it at ``wall_seconds`` or once output passes the limit.

    Raises ``SandboxError`` if the process cannot be started.
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env),
            preexec_fn=preexec,
            pass_fds=tuple(pass_fds),
            close_fds=True,
        )
    except OSError as exc:
        raise SandboxError(f"cannot start {argv[0]}: {exc}") from exc
    try:
        return await _supervise(proc, stdin, output_limit, wall_seconds)
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


async def _feed(proc: asyncio.subprocess.Process, data: bytes) -> None:
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        if data:
            proc.stdin.write(data)
            await proc.stdin.drain()
        proc.stdin.close()


async def _supervise(proc: asyncio.subprocess.Process, stdin: bytes, limit: int, wall: float) -> Captured:
    assert proc.stdout is not None and proc.stderr is not None
    overflow = asyncio.Event()
    readers = asyncio.gather(
        _read_capped(proc.stdout, limit, overflow),
        _read_capped(proc.stderr, limit, overflow),
        _feed(proc, stdin),
        proc.wait(),
    )
    watch: asyncio.Future[Any] = asyncio.ensure_future(overflow.wait())
    pending: set[asyncio.Future[Any]] = {readers, watch}
    done, _ = await asyncio.wait(pending, timeout=wall, return_when=asyncio.FIRST_COMPLETED)
    timed_out = not done
    if readers not in done:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    watch.cancel()
    out, err, _, code = await readers
    return Captured(code, out, err, overflow.is_set(), timed_out)
