"""The jobs of a batch, run by any replica's worker (``gateway/services/jobs``).

``plan``: the input file checked again (every line's ``url`` must be the batch's endpoint), split into
chunks of ``chunk_lines``; the chunk jobs are queued and the batch moves ``in_progress`` in one
transaction. ``chunk``: each line not yet answered runs through ``run_line`` (the interactive chain,
as the batch's creator) at most ``concurrency`` at a time in this replica (``busy_concurrency`` while
it serves interactive requests: ``gate.py``), in waves; after each wave the results are written
insert-if-absent by (batch, ``custom_id``), and the batch's status read again (cancelled, or past its
window: the chunk stops). A chunk re-run after a crash skips the lines already
written, so no line is lost and none is written twice. The chunk that finishes last ``finalize``s:
the output and error files are assembled from the results, in input order.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.kernel.errors import InvalidRequest, NotFound
from gateway.kernel.observability.logging import JsonLog
from gateway.services.batches import store
from gateway.services.batches.gate import PriorityGate
from gateway.services.batches.lines import BadLine, InputLine, parse_input, parse_lines
from gateway.services.batches.objects import error_line, result_line
from gateway.services.batches.service import CHUNK, PLAN, BatchService
from gateway.services.batches.store import BatchRow
from gateway.services.vectorstores import repo as files_repo
from gateway.services.vectorstores.objects import new_file_id

# (caller record, endpoint, request body, request id) -> (HTTP status, reply body): never raises for a refusal
RunLine = Callable[[dict[str, Any] | None, str, dict[str, Any], str], Awaitable[tuple[int, Any]]]
Result = tuple[str, int, bool, str]  # custom_id, line, ok, result line
WAVE = 64
EXPIRED = "This line was not run within the batch's completion window."


class BatchRunner:
    def __init__(self, service: BatchService, run_line: RunLine, log: JsonLog,
                 serving: Callable[[], int] = lambda: 0) -> None:
        self._service = service
        self._run_line = run_line
        self._log = log
        s = service.settings
        self.gate = PriorityGate(s.concurrency, s.busy_concurrency, serving)  # interactive requests first
        service.jobs.register(PLAN, self.plan)
        service.jobs.register(CHUNK, self.chunk)

    async def plan(self, batch_id: str) -> None:
        row = await self._row(batch_id)
        if row is None or row.status != "validating":
            return
        try:
            lines = await self._input(row)
        except (InvalidRequest, NotFound) as err:
            await self._fail(row, err)
            return
        size = self._service.settings.chunk_lines
        chunks = [lines[i:i + size] for i in range(0, len(lines), size)]
        async with self._service.db.transaction() as conn:
            if not await store.move(conn, batch_id, "in_progress", ("validating",), total=len(lines),
                                    chunks=len(chunks)):
                return  # cancelled meanwhile
            # small jobs: where the chunk's lines are in the file, not the lines
            jobs = [{"batch_id": batch_id, "chunk": n, "line": chunk[0].line, "start": chunk[0].start,
                     "end": chunk[-1].end} for n, chunk in enumerate(chunks)]
            await self._service.jobs.defer(CHUNK, jobs, connection=conn)
        self._log.info("batch_started", batch_id=batch_id, lines=len(lines), chunks=len(chunks))

    async def chunk(self, batch_id: str, chunk: int, line: int, start: int, end: int) -> None:
        row = await self._row(batch_id)
        if row is None:
            return
        try:
            data = await self._service.files.file_slice(row.tenant, row.input_file_id, start, end)
        except NotFound as err:  # the input file was deleted while the batch ran
            await self._fail(row, err, when=("in_progress", "cancelling"))
            return
        todo = list(parse_lines(data, line, start))
        async with self._service.db.connection() as conn:
            done = await store.done_ids(conn, batch_id, [li.custom_id for li in todo])
        todo = [li for li in todo if li.custom_id not in done]
        for first in range(0, len(todo), WAVE):
            if not _running(row):
                break
            results = await asyncio.gather(*(self._run(row, li) for li in todo[first:first + WAVE]))
            async with self._service.db.connection() as conn:
                await store.write_results(conn, batch_id, results)
                row = await store.get(conn, batch_id) or row
        async with self._service.db.connection() as conn:
            finished = await store.finish_chunk(conn, batch_id, chunk)
        self._log.info("batch_chunk", batch_id=batch_id, chunk=chunk, ran=len(todo), status=row.status)
        if finished >= row.chunks:
            await self.finalize(batch_id)

    async def _run(self, row: BatchRow, line: InputLine) -> Result:
        request_id = "req_" + secrets.token_hex(16)
        async with self.gate.slot():
            status, body = await self._run_line(row.caller, row.endpoint, line.body, request_id)
        ok = 200 <= status < 300
        return line.custom_id, line.line, ok, result_line(line.custom_id, status, request_id, body)

    async def finalize(self, batch_id: str) -> None:
        """Files assembled and the final status set in one transaction (run again after a crash: the
        batch is still ``finalizing`` or ``cancelling``)."""
        async with self._service.db.connection() as conn:
            await store.move(conn, batch_id, "finalizing", ("in_progress",))
        async with self._service.db.transaction() as conn:
            row = await store.get(conn, batch_id, lock=True)
            if row is None or row.status not in ("finalizing", "cancelling"):
                return
            results = await store.results(conn, batch_id)
            unrun = await self._unrun(row, results) if row.status == "finalizing" else []
            ok = [r for _, good, r in results if good]
            bad = [r for _, good, r in results if not good] + unrun
            final = ("cancelled" if row.status == "cancelling" else
                     "expired" if len(results) < row.total else "completed")
            await store.move(conn, batch_id, final, (row.status,), output_file_id=await _file(conn, row, ok, "output"),
                             error_file_id=await _file(conn, row, bad, "error"), completed=len(ok), failed=len(bad))
        self._log.info("batch_finished", batch_id=batch_id, status=final, completed=len(ok), failed=len(bad))

    async def _unrun(self, row: BatchRow, results: list[tuple[str, bool, str]]) -> list[str]:
        """Error lines for the requests that did not run (the window passed)."""
        if len(results) >= row.total:
            return []
        ran = {cid for cid, _, _ in results}
        try:
            lines = await self._input(row)
        except (InvalidRequest, NotFound):  # the input file is gone: the unrun lines cannot be named
            return []
        return [error_line(li.custom_id, "batch_expired", EXPIRED) for li in lines if li.custom_id not in ran]

    async def _input(self, row: BatchRow) -> list[InputLine]:
        _, data = await self._service.files.file_content(row.tenant, row.input_file_id)
        lines = parse_input(data, self._service.settings.max_lines)
        for li in lines:
            if li.url != row.endpoint:
                raise BadLine(li.line, f"'url' is {li.url!r}, but the batch's endpoint is {row.endpoint!r}", "url")
        return lines

    async def _fail(self, row: BatchRow, err: InvalidRequest | NotFound,
                    when: tuple[str, ...] = ("validating",)) -> None:
        error = {"code": err.code or "invalid_request", "message": err.message, "param": err.param,
                 "line": err.line if isinstance(err, BadLine) else None}
        async with self._service.db.connection() as conn:
            await store.move(conn, row.id, "failed", when, errors={"object": "list", "data": [error]})
        self._log.info("batch_failed", batch_id=row.id, reason=err.message)

    async def _row(self, batch_id: str) -> BatchRow | None:
        async with self._service.db.connection() as conn:
            return await store.get(conn, batch_id)


def _running(row: BatchRow) -> bool:
    return row.status == "in_progress" and store.now() < row.expires_at


async def _file(conn: store.Connection, row: BatchRow, lines: list[str], kind: str) -> str | None:
    if not lines:
        return None
    data = ("\n".join(lines) + "\n").encode()
    found = await files_repo.insert_file(conn, (new_file_id(), row.tenant, f"{row.id}_{kind}.jsonl", "batch_output",
                                                data))
    return str(found[0])
