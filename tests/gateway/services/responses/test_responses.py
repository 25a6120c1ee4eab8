"""The PostgreSQL ResponseStore: tenant scoping, input item pages, the previous_response_id chain,
deletion, cancellation (real PostgreSQL)."""

from __future__ import annotations

import pytest

from gateway.services.responses import ResponseState
from tests.support.response_objects import Query, new_response_id, response_object, user_message

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def turn(state: ResponseState, tenant: str, text: str, previous: str | None = None) -> str:
    response = response_object(output=f"answer to {text}", previous=previous)
    await state.responses.put(tenant, response, [user_message(text)], previous_response_id=previous)
    return str(response["id"])


def texts(items: list[dict[str, object]]) -> list[str]:
    return [part["text"] for item in items for part in item["content"]]  # type: ignore[attr-defined]


async def test_a_stored_response_reads_back_for_its_tenant_only(state: ResponseState, tenant: str) -> None:
    response = response_object()
    items = [user_message("hi"), {"type": "message", "role": "user", "content": "no id yet"}]
    await state.responses.put(tenant, response, items, conversation_id="conv_1")
    stored = await state.responses.get(tenant, response["id"])
    assert stored is not None and stored.response == response and stored.conversation_id == "conv_1"
    assert stored.input_items[0] == items[0]
    assert stored.input_items[1]["id"].startswith("msg_") and stored.input_items[1]["content"] == "no id yet"
    other = tenant + "-other"
    assert await state.responses.get(other, response["id"]) is None
    assert await state.responses.context_items(other, response["id"]) is None
    assert await state.responses.input_items(other, response["id"], after=None, limit=5, order="asc") is None
    assert not await state.responses.update(other, response)
    assert not await state.responses.delete(other, response["id"])
    assert await state.responses.get(tenant, response["id"]) is not None


async def test_put_again_replaces_the_object_and_keeps_the_input(state: ResponseState, tenant: str) -> None:
    response = response_object(status="in_progress", output=None)
    await state.responses.put(tenant, response, [user_message("first")])
    await state.responses.put(tenant, {**response, "status": "completed"}, [user_message("second")])
    stored = await state.responses.get(tenant, response["id"])
    assert stored is not None and stored.response["status"] == "completed"
    assert texts(stored.input_items) == ["first"]
    assert await state.responses.update(tenant, {**response, "status": "failed"})
    stored = await state.responses.get(tenant, response["id"])
    assert stored is not None and stored.response["status"] == "failed"


async def test_input_items_page_like_openai(state: ResponseState, tenant: str) -> None:
    response = response_object()
    items = [user_message(f"m{i}", f"msg_{i}") for i in range(7)]
    await state.responses.put(tenant, response, items)
    rid = response["id"]
    page = await state.responses.input_items(tenant, rid, after=None, limit=3, order="asc")
    assert page is not None and texts(page.items) == ["m0", "m1", "m2"] and page.has_more
    page = await state.responses.input_items(tenant, rid, after="msg_2", limit=3, order="asc")
    assert page is not None and texts(page.items) == ["m3", "m4", "m5"] and page.has_more
    page = await state.responses.input_items(tenant, rid, after="msg_5", limit=3, order="asc")
    assert page is not None and texts(page.items) == ["m6"] and not page.has_more
    page = await state.responses.input_items(tenant, rid, after=None, limit=4, order="desc")
    assert page is not None and texts(page.items) == ["m6", "m5", "m4", "m3"] and page.has_more
    page = await state.responses.input_items(tenant, rid, after="msg_3", limit=4, order="desc")
    assert page is not None and texts(page.items) == ["m2", "m1", "m0"] and not page.has_more
    page = await state.responses.input_items(tenant, rid, after="msg_unknown", limit=4, order="asc")
    assert page is not None and page.items == [] and not page.has_more


async def test_context_walks_the_chain_oldest_first(state: ResponseState, tenant: str) -> None:
    first = await turn(state, tenant, "one")
    second = await turn(state, tenant, "two", first)
    third = await turn(state, tenant, "three", second)
    items = await state.responses.context_items(tenant, third)
    assert items is not None
    assert texts(items) == ["one", "answer to one", "two", "answer to two", "three", "answer to three"]
    assert [i["role"] for i in items] == ["user", "assistant"] * 3
    assert await state.responses.context_items(tenant, new_response_id()) is None


async def test_context_sees_the_last_written_output(state: ResponseState, tenant: str) -> None:
    first = await turn(state, tenant, "one")
    stored = await state.responses.get(tenant, first)
    assert stored is not None
    assert await state.responses.update(tenant, response_object(first, output="rewritten"))
    assert texts(await state.responses.context_items(tenant, first) or []) == ["one", "rewritten"]


async def test_the_chain_is_bounded_by_max_depth(state: ResponseState, tenant: str) -> None:
    previous = None
    for word in ("a", "b", "c", "d", "e"):
        previous = await turn(state, tenant, word, previous)
    assert previous is not None
    items = await state.responses.context_items(tenant, previous)  # max_chain_depth=3: itself and 3 ancestors
    assert texts(items or [])[::2] == ["b", "c", "d", "e"]


async def test_deleting_removes_the_items_and_ends_the_chain_there(state: ResponseState, tenant: str,
                                                                   sql: Query) -> None:
    first = await turn(state, tenant, "one")
    second = await turn(state, tenant, "two", first)
    third = await turn(state, tenant, "three", second)
    assert await state.responses.delete(tenant, second)
    assert not await state.responses.delete(tenant, second)
    assert await state.responses.get(tenant, second) is None
    assert await state.responses.input_items(tenant, second, after=None, limit=20, order="asc") is None
    assert texts(await state.responses.context_items(tenant, third) or []) == ["three", "answer to three"]
    assert await sql("SELECT count(*) FROM llmops_response_items WHERE tenant = %s AND response_id = %s",
                     tenant, second) == [(0,)]


async def test_a_nul_from_a_model_is_stored_as_a_replacement_character(state: ResponseState, tenant: str) -> None:
    response = response_object(output="before\x00after")
    await state.responses.put(tenant, response, [user_message("hi")])
    stored = await state.responses.get(tenant, response["id"])
    assert stored is not None and stored.response["output"][0]["content"][0]["text"] == "before\ufffdafter"


async def test_only_a_queued_or_running_background_response_is_cancelled(state: ResponseState, tenant: str,
                                                                         sql: Query) -> None:
    plain = response_object()
    queued = response_object(status="queued", background=True, output=None)
    done = response_object(background=True)
    for response in (plain, queued, done):
        await state.responses.put(tenant, response, [user_message("hi")])
    assert await state.queue.enqueue(tenant, queued["id"])
    assert await state.responses.cancel(tenant, new_response_id()) is None
    assert await state.responses.cancel(tenant + "-other", queued["id"]) is None
    assert (await state.responses.cancel(tenant, plain["id"]) or ({}, ""))[1] == "not_background"
    assert (await state.responses.cancel(tenant, done["id"]) or ({}, ""))[1] == "final"
    cancelled = await state.responses.cancel(tenant, queued["id"])
    assert cancelled is not None and cancelled[1] == "cancelled" and cancelled[0]["status"] == "cancelled"
    again = await state.responses.cancel(tenant, queued["id"])
    assert again is not None and again[1] == "final" and again[0]["status"] == "cancelled"
    assert await sql("SELECT state FROM llmops_response_jobs WHERE tenant = %s", tenant) == [("cancelled",)]
