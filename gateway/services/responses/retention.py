"""The retention sweep: responses created, and conversations last changed, before the cutoff go,
in small batches (their items, jobs and events with them)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.services.responses.pool import StatePool

_BATCH = 500
_RESPONSES = ("DELETE FROM llmops_responses WHERE (tenant, id) IN (SELECT tenant, id FROM llmops_responses "
              "WHERE created_at < %s LIMIT %s FOR UPDATE SKIP LOCKED)")
_CONVERSATIONS = ("DELETE FROM llmops_conversations WHERE (tenant, id) IN (SELECT tenant, id FROM "
                  "llmops_conversations WHERE updated_at < %s LIMIT %s FOR UPDATE SKIP LOCKED)")


@dataclass(frozen=True, slots=True)
class Swept:
    responses: int
    conversations: int


async def sweep(pool: StatePool, cutoff: int) -> Swept:
    """Delete what is older than ``cutoff`` (unix seconds)."""
    counts = []
    for sql in (_RESPONSES, _CONVERSATIONS):
        total = 0
        while True:
            async with pool.connection() as conn:
                deleted = (await conn.execute(sql, (cutoff, _BATCH))).rowcount
            total += deleted
            if deleted < _BATCH:
                break
        counts.append(total)
    return Swept(*counts)
