"""A running ``code`` job on the node: its script's tool calls arrive on a unix socket bound into the
sandbox (``TOOLS_MOUNT``) and leave as the answers to the control plane's signed requests.

``next()`` waits for whichever comes first: the script's next call (an ``InnerCall`` for the control
plane) or the job's ``Result``. ``answer()`` hands the control plane's ``InnerAnswer`` to the waiting
script and waits again. The script blocks on each call; calls from several threads queue up and go
out one at a time. Bounds: ``max_calls`` per job (later ones are answered with an error here), one
call's line at ``MAX_CALL_BYTES``, and ``idle_s``: a call the control plane leaves unanswered that
long means it is gone, and ``on_idle`` is called (the agent then kills the job).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

from executors.drivers.base import TOOLS_SOCKET
from executors.errors import JobRejected
from executors.inner import IDLE_SECONDS, MAX_CALL_BYTES, MAX_CALLS, InnerAnswer, InnerCall
from executors.spec import Job, Result

Waiting = tuple[InnerCall, "asyncio.Future[InnerAnswer]"]


class CodeSession:
    """One code job: ``start()`` runs it through ``run`` with its tools socket; ``cancel()`` kills it."""

    def __init__(self, job: Job, run: Callable[[Job], Awaitable[Result]], *, on_idle: Callable[[], None],
                 max_calls: int = MAX_CALLS, idle_s: float = IDLE_SECONDS, root: Path | None = None) -> None:
        self.job = job
        self._run = run
        self._on_idle = on_idle
        self._max_calls = max_calls
        self._idle_s = idle_s
        self._root = root
        self._calls: asyncio.Queue[Waiting] = asyncio.Queue()
        self._waiting: dict[str, asyncio.Future[InnerAnswer]] = {}
        self._count = 0
        self._task: asyncio.Task[Result] | None = None
        self._idle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._main())

    @property
    def finished(self) -> bool:
        return self._task is not None and self._task.done()

    def cancel(self) -> None:
        self._disarm()
        if self._task is not None:
            self._task.cancel()

    async def next(self) -> InnerCall | Result:
        """The script's next call, or the job's result once it ended (a call it can no longer read is dropped)."""
        assert self._task is not None
        getter = asyncio.ensure_future(self._calls.get())
        try:
            await asyncio.wait({getter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            getter.cancel()
        if self._task.done() or getter.cancelled():
            return self._task.result()
        call, future = getter.result()
        self._waiting[call.call_id] = future
        self._idle = asyncio.get_running_loop().call_later(self._idle_s, self._on_idle)
        return call

    async def answer(self, call_id: str, answer: InnerAnswer) -> InnerCall | Result:
        """Give the script its answer to ``call_id`` and wait for what comes next."""
        future = self._waiting.pop(call_id, None)
        if future is None:
            raise JobRejected(f"code job {self.job.id} has no pending call {call_id!r}")
        self._disarm()
        if not future.done():
            future.set_result(answer)
        return await self.next()

    def _disarm(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    async def _main(self) -> Result:
        try:
            async with self._socket() as directory:
                return await self._run(replace(self.job, tools_dir=str(directory)))
        finally:
            self._release()

    def _release(self) -> None:
        """The job ended: calls still waiting for an answer will never be read."""
        while not self._calls.empty():
            self._calls.get_nowait()[1].cancel()
        for future in self._waiting.values():
            future.cancel()

    @contextlib.asynccontextmanager
    async def _socket(self) -> AsyncIterator[Path]:
        directory = Path(tempfile.mkdtemp(prefix="llmops-tools-", dir=self._root))
        os.chmod(directory, 0o711)  # the sandbox user may reach the socket, not list or add files
        path = directory / TOOLS_SOCKET.rsplit("/", 1)[1]
        server = await asyncio.start_unix_server(self._serve, path=str(path), limit=MAX_CALL_BYTES)
        try:
            os.chmod(path, 0o666)
            yield directory
        finally:
            server.close()
            await server.wait_closed()
            shutil.rmtree(directory, ignore_errors=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                answer = await self._ask(await reader.readuntil(b"\n"))
            except asyncio.LimitOverrunError:
                answer = InnerAnswer("error", f"a tool call may be at most {MAX_CALL_BYTES} bytes of JSON")
            writer.write(json.dumps(answer.to_dict()).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the script went away
        finally:
            writer.close()

    async def _ask(self, line: bytes) -> InnerAnswer:
        try:
            data = json.loads(line)
        except ValueError:
            return InnerAnswer("error", "a tool call must be one line of JSON")
        name = data.get("name") if isinstance(data, dict) else None
        arguments = data.get("arguments", {}) if isinstance(data, dict) else None
        if not isinstance(name, str) or not isinstance(arguments, dict):
            return InnerAnswer("error", 'a tool call is {"name": str, "arguments": object}')
        self._count += 1
        if self._count > self._max_calls:
            return InnerAnswer("error", f"a code job may make at most {self._max_calls} tool calls")
        future: asyncio.Future[InnerAnswer] = asyncio.get_running_loop().create_future()
        await self._calls.put((InnerCall(str(self._count), name, arguments), future))
        return await future
