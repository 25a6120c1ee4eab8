"""The retention sweep deletes responses by creation time and conversations by their last change."""

from __future__ import annotations

import time

import pytest

from gateway.kernel.config.sections.responses import ResponsesSettings
from gateway.services.responses import ResponseState
from gateway.services.stores.postgres import Postgres
from tests.support.response_objects import Query, response_object, user_message

pytestmark = pytest.mark.asyncio(loop_scope="session")
DAY = 86_400


async def test_old_responses_and_idle_conversations_are_swept(state: ResponseState, tenant: str, sql: Query) -> None:
    now = time.time()
    old, recent = response_object(), response_object()
    for response, age in ((old, 40 * DAY), (recent, 10 * DAY)):
        await state.responses.put(tenant, response, [user_message("hi")])
        await sql("UPDATE llmops_responses SET created_at = %s WHERE tenant = %s AND id = %s", int(now - age),
                  tenant, response["id"])
    idle = await state.conversations.create(tenant, {}, [user_message("old")])
    active = await state.conversations.create(tenant, {}, [])
    await sql("UPDATE llmops_conversations SET updated_at = %s WHERE tenant = %s", int(now - 31 * DAY), tenant)
    assert await state.conversations.append(tenant, active.id, [user_message("just now")])
    swept = await state.sweep(now)  # retention_days: 30
    assert swept.responses >= 1 and swept.conversations >= 1
    assert await state.responses.get(tenant, old["id"]) is None
    assert await state.responses.get(tenant, recent["id"]) is not None
    assert await state.conversations.get(tenant, idle.id) is None
    assert await state.conversations.get(tenant, active.id) is not None
    assert await sql("SELECT count(*) FROM llmops_response_items WHERE tenant = %s AND response_id = %s",
                     tenant, old["id"]) == [(0,)]


async def test_retention_counts_from_when_the_gateway_stored_it(state: ResponseState, tenant: str) -> None:
    """A Response whose body says it is old (a backend with a wrong clock, a canned answer) is kept."""
    claims_old = response_object(created_at=1)
    await state.responses.put(tenant, claims_old, [])
    await state.sweep()
    assert await state.responses.get(tenant, claims_old["id"]) is not None


async def test_retention_zero_keeps_everything(postgres: Postgres, tenant: str) -> None:
    async def opened() -> Postgres:
        return postgres

    keeper = ResponseState(opened, ResponsesSettings(retention_days=0))
    old = response_object(created_at=1)
    await keeper.responses.put(tenant, old, [])
    assert (await keeper.sweep()).responses == 0
    assert await keeper.responses.get(tenant, old["id"]) is not None
    await keeper.responses.delete(tenant, old["id"])
    await keeper.aclose()
