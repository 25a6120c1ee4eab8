"""The durable queue behind ``background: true``, and the stored stream events of background responses.

A job is one row per response (``llmops_response_jobs``)::

    queued ──claim──▶ running ──finish──▶ done          (the Response object written)
      ▲                 │ ──fail────────▶ failed        (status failed, ``error`` set)
      │                 │ ──cancel──────▶ cancelled     (by POST .../cancel; the runner stops)
      └──recover────────┘ lease expired: re-queued while attempts < max_attempts,
                          else failed ("the gateway restarted while this response was in progress")

``claim`` takes queued rows with ``FOR UPDATE SKIP LOCKED``, so competing runners (any replica) never
take the same one; the owner renews its lease while it runs, and every write of a runner is fenced by
``owner = me AND state = 'running'``: a runner that lost its lease can no longer change anything.
Stream events are numbered per response from 0; the number is also the event's ``sequence_number``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.services.responses.pool import Connection, StatePool
from gateway.services.responses.records import dumps, jsonb, loads
from gateway.services.responses.responses import TERMINAL, insert

RESTARTED = "The gateway restarted while this response was in progress."
FINAL_EVENTS = frozenset({"response.completed", "response.failed", "response.incomplete", "error"})

_CLAIM = """
WITH picked AS (
    SELECT tenant, response_id FROM llmops_response_jobs WHERE state = 'queued'
    ORDER BY enqueued_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE llmops_response_jobs j SET state = 'running', owner = %(owner)s, attempts = j.attempts + 1,
        lease_until = clock_timestamp() + make_interval(secs => %(lease)s)
    FROM picked p WHERE j.tenant = p.tenant AND j.response_id = p.response_id
    RETURNING j.tenant, j.response_id, j.attempts
), started AS (
    UPDATE llmops_responses r SET response = jsonb_set(r.response, '{status}', '"in_progress"')
    FROM claimed c WHERE r.tenant = c.tenant AND r.id = c.response_id AND r.response ->> 'status' = 'queued'
)
SELECT c.tenant, c.response_id, c.attempts,
       (SELECT coalesce(max(e.seq) + 1, 0) FROM llmops_response_events e
        WHERE e.tenant = c.tenant AND e.response_id = c.response_id)
FROM claimed c
"""
_EXPIRED = """
UPDATE llmops_response_jobs SET
    state = CASE WHEN attempts < %(max)s THEN 'queued' ELSE 'failed' END,
    owner = NULL, lease_until = NULL, last_error = %(reason)s
WHERE state = 'running' AND lease_until < clock_timestamp()
RETURNING tenant, response_id, state
"""
_FENCE = ("EXISTS (SELECT 1 FROM llmops_response_jobs WHERE tenant = %(tenant)s AND response_id = %(id)s "
          "AND owner = %(owner)s AND state = 'running')")


@dataclass(frozen=True, slots=True)
class Job:
    tenant: str
    response_id: str
    attempt: int
    next_event: int  # the sequence number of this run's first stream event


@dataclass(frozen=True, slots=True)
class Recovered:
    requeued: int
    failed: int


class BackgroundQueue:
    def __init__(self, pool: StatePool) -> None:
        self._pool = pool

    async def submit(self, tenant: str, response: dict[str, Any], input_items: list[dict[str, Any]], *,
                     previous_response_id: str | None = None, conversation_id: str | None = None,
                     request: dict[str, Any] | None = None) -> None:
        """Store a ``background: true`` response (status ``queued``) and queue it with ``request`` (what
        its run needs), in one transaction: no crash can leave it stored but never run."""
        async with self._pool.transaction() as conn:
            await insert(conn, tenant, response, input_items, previous_response_id, conversation_id)
            await conn.execute("INSERT INTO llmops_response_jobs (tenant, response_id, state, request) "
                               "VALUES (%s, %s, 'queued', %s) ON CONFLICT DO NOTHING",
                               (tenant, response["id"], jsonb(request) if request is not None else None))

    async def request(self, tenant: str, response_id: str) -> dict[str, Any] | None:
        """What ``submit`` kept for the job's run; None when there is no job or it kept nothing."""
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT request::text FROM llmops_response_jobs WHERE tenant = %s "
                                     "AND response_id = %s", (tenant, response_id))
            row = await cur.fetchone()
        found: dict[str, Any] | None = loads(row[0]) if row is not None else None
        return found

    async def enqueue(self, tenant: str, response_id: str) -> bool:
        """Queue a stored response (False when it is not stored, or already queued)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO llmops_response_jobs (tenant, response_id, state) SELECT tenant, id, 'queued' "
                "FROM llmops_responses WHERE tenant = %s AND id = %s ON CONFLICT DO NOTHING", (tenant, response_id))
            return cur.rowcount > 0

    async def claim(self, owner: str, limit: int, lease_s: float) -> list[Job]:
        async with self._pool.transaction() as conn:
            cur = await conn.execute(_CLAIM, {"owner": owner, "limit": limit, "lease": lease_s})
            return [Job(r[0], r[1], int(r[2]), int(r[3])) for r in await cur.fetchall()]

    async def renew(self, owner: str, job: Job, lease_s: float) -> bool:
        """Extend the lease; False when this runner should stop (cancelled, deleted, or taken back)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE llmops_response_jobs SET lease_until = clock_timestamp() + make_interval(secs => %s) "
                "WHERE tenant = %s AND response_id = %s AND owner = %s AND state = 'running'",
                (lease_s, job.tenant, job.response_id, owner))
            return cur.rowcount > 0

    async def append_events(self, owner: str, job: Job, first: int, events: list[dict[str, Any]]) -> bool:
        """Store events numbered ``first``, ``first + 1``, ... (fenced: False when the lease is lost)."""
        params = {"tenant": job.tenant, "id": job.response_id, "owner": owner, "first": first,
                  "events": jsonb(events)}
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO llmops_response_events (tenant, response_id, seq, event) "
                "SELECT %(tenant)s, %(id)s, (%(first)s + n - 1)::integer, e "
                "FROM jsonb_array_elements(%(events)s) WITH ORDINALITY AS t (e, n) "
                f"WHERE {_FENCE} ON CONFLICT DO NOTHING", params)
            return cur.rowcount == len(events)

    async def finish(self, owner: str, job: Job, response: dict[str, Any]) -> bool:
        """Write the final Response object (unless it was cancelled meanwhile) and close the job."""
        async with self._pool.transaction() as conn:
            cur = await conn.execute(
                "UPDATE llmops_response_jobs SET state = 'done', owner = NULL, lease_until = NULL "
                "WHERE tenant = %s AND response_id = %s AND owner = %s AND state = 'running'",
                (job.tenant, job.response_id, owner))
            if cur.rowcount == 0:
                return False
            await conn.execute(
                "UPDATE llmops_responses SET response = %s WHERE tenant = %s AND id = %s "
                "AND response ->> 'status' <> 'cancelled'", (jsonb(response), job.tenant, job.response_id))
        return True

    async def release(self, owner: str, job: Job) -> None:
        """Give a job back without counting the attempt (a graceful shutdown)."""
        async with self._pool.transaction() as conn:
            cur = await conn.execute(
                "UPDATE llmops_response_jobs SET state = 'queued', owner = NULL, lease_until = NULL, "
                "attempts = greatest(attempts - 1, 0) WHERE tenant = %s AND response_id = %s AND owner = %s "
                "AND state = 'running'", (job.tenant, job.response_id, owner))
            if cur.rowcount:
                await _status(conn, job.tenant, job.response_id, "in_progress", "queued")

    async def recover(self, max_attempts: int) -> Recovered:
        """Jobs whose lease expired (their runner died): re-queued, or failed with a reason that the
        Response object and its stream both carry. Nothing is left ``in_progress``."""
        async with self._pool.transaction() as conn:
            cur = await conn.execute(_EXPIRED, {"max": max_attempts, "reason": RESTARTED})
            rows = await cur.fetchall()
            failed = [(r[0], r[1]) for r in rows if r[2] == "failed"]
            for tenant, response_id in failed:
                await _fail_response(conn, tenant, response_id, RESTARTED)
            for tenant, response_id, _ in (r for r in rows if r[2] == "queued"):
                await _status(conn, tenant, response_id, "in_progress", "queued")
        return Recovered(len(rows) - len(failed), len(failed))

    async def fail(self, owner: str, job: Job, message: str) -> bool:
        """Close a job whose run raised: the response is ``failed`` with ``message`` (unless final already),
        and its stream ends with ``response.failed``."""
        async with self._pool.transaction() as conn:
            cur = await conn.execute(
                "UPDATE llmops_response_jobs SET state = 'failed', owner = NULL, lease_until = NULL, last_error = %s "
                "WHERE tenant = %s AND response_id = %s AND owner = %s AND state = 'running'",
                (message, job.tenant, job.response_id, owner))
            if cur.rowcount == 0:
                return False
            await _fail_response(conn, job.tenant, job.response_id, message)
        return True

    async def events_after(self, tenant: str, response_id: str, after: int,
                           limit: int = 200) -> tuple[str, list[dict[str, Any]]] | None:
        """The response's status and its stored events numbered above ``after``; None when unknown."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT r.response ->> 'status', "
                "(SELECT coalesce(jsonb_agg(p.event ORDER BY p.seq), '[]'::jsonb)::text FROM ("
                "  SELECT e.seq, e.event FROM llmops_response_events e WHERE e.tenant = r.tenant "
                "  AND e.response_id = r.id AND e.seq > %s ORDER BY e.seq LIMIT %s) p) "
                "FROM llmops_responses r WHERE r.tenant = %s AND r.id = %s", (after, limit, tenant, response_id))
            row = await cur.fetchone()
        return None if row is None else (str(row[0]), loads(row[1]))


async def _fail_response(conn: Connection, tenant: str, response_id: str, message: str) -> None:
    cur = await conn.execute("SELECT response::text FROM llmops_responses WHERE tenant = %s AND id = %s FOR UPDATE",
                             (tenant, response_id))
    row = await cur.fetchone()
    if row is None:
        return
    response: dict[str, Any] = loads(row[0])
    if response.get("status") in TERMINAL:
        return
    response = failed(response, message)
    await conn.execute("UPDATE llmops_responses SET response = %s WHERE tenant = %s AND id = %s",
                       (jsonb(response), tenant, response_id))
    await conn.execute(
        "INSERT INTO llmops_response_events (tenant, response_id, seq, event) "
        "SELECT %(tenant)s, %(id)s, s.seq, jsonb_set(%(event)s::jsonb, '{sequence_number}', to_jsonb(s.seq)) "
        "FROM (SELECT coalesce(max(seq) + 1, 0) AS seq FROM llmops_response_events "
        "      WHERE tenant = %(tenant)s AND response_id = %(id)s) s",
        {"tenant": tenant, "id": response_id, "event": dumps({"type": "response.failed", "sequence_number": 0,
                                                              "response": response})})


async def _status(conn: Connection, tenant: str, response_id: str, old: str, new: str) -> None:
    await conn.execute("UPDATE llmops_responses SET response = jsonb_set(response, '{status}', to_jsonb(%s::text)) "
                       "WHERE tenant = %s AND id = %s AND response ->> 'status' = %s", (new, tenant, response_id, old))


def failed(response: dict[str, Any], message: str) -> dict[str, Any]:
    return {**response, "status": "failed", "error": {"code": "server_error", "message": message}}
