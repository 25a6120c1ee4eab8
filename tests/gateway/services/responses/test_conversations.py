"""The PostgreSQL conversation store: items in order, once each, paged; tenant scoping; deletion."""

from __future__ import annotations

import asyncio

import pytest

from gateway.services.responses import ResponseState
from tests.support.response_objects import Query, assistant_message, user_message

pytestmark = pytest.mark.asyncio(loop_scope="session")


def texts(items: list[dict[str, object]]) -> list[str]:
    return [part["text"] for item in items for part in item["content"]]  # type: ignore[attr-defined]


async def test_a_conversation_keeps_its_items_in_order(state: ResponseState, tenant: str) -> None:
    store = state.conversations
    conv = await store.create(tenant, {"topic": "zebras"}, [user_message("one")])
    assert conv.id.startswith("conv_") and conv.as_object()["object"] == "conversation"
    assert await store.append(tenant, conv.id, [assistant_message("two"), user_message("three")])
    added = await store.add(tenant, conv.id, [{"type": "message", "role": "user", "content": "four"}])
    assert added is not None and added[0]["id"].startswith("msg_")
    items = await store.all_items(tenant, conv.id)
    assert items is not None and texts(items[:3]) == ["one", "two", "three"] and items[3]["content"] == "four"
    got = await store.get(tenant, conv.id)
    assert got is not None and got.metadata == {"topic": "zebras"} and got.created_at == conv.created_at


async def test_an_item_is_in_a_conversation_once(state: ResponseState, tenant: str) -> None:
    store = state.conversations
    conv = await store.create(tenant, {}, [])
    item = user_message("hello", "msg_same")
    assert await store.append(tenant, conv.id, [item])
    assert await store.append(tenant, conv.id, [{**item, "content": [{"type": "input_text", "text": "changed"}]}])
    assert texts(await store.all_items(tenant, conv.id) or []) == ["hello"]


async def test_concurrent_appends_all_land_each_batch_together(state: ResponseState, tenant: str) -> None:
    store = state.conversations
    conv = await store.create(tenant, {}, [])
    batches = [[user_message(f"{b}-{i}") for i in range(3)] for b in range(8)]
    assert all(await asyncio.gather(*(store.append(tenant, conv.id, batch) for batch in batches)))
    got = texts(await store.all_items(tenant, conv.id) or [])
    assert sorted(got) == sorted(texts([i for batch in batches for i in batch]))
    for start in range(0, len(got), 3):
        assert len({text.split("-")[0] for text in got[start:start + 3]}) == 1, got


async def test_items_page_by_after_limit_and_order(state: ResponseState, tenant: str) -> None:
    store = state.conversations
    conv = await store.create(tenant, {}, [user_message(f"m{i}", f"msg_{i}") for i in range(5)])
    found = await store.items(tenant, conv.id, after=None, limit=2, order="desc")
    assert found is not None and texts(found[1].items) == ["m4", "m3"] and found[1].has_more
    found = await store.items(tenant, conv.id, after="msg_3", limit=2, order="desc")
    assert found is not None and texts(found[1].items) == ["m2", "m1"] and found[1].has_more
    found = await store.items(tenant, conv.id, after="msg_1", limit=2, order="desc")
    assert found is not None and texts(found[1].items) == ["m0"] and not found[1].has_more
    found = await store.items(tenant, conv.id, after="msg_2", limit=10, order="asc")
    assert found is not None and texts(found[1].items) == ["m3", "m4"] and not found[1].has_more


async def test_items_are_read_and_deleted_one_by_one(state: ResponseState, tenant: str) -> None:
    store = state.conversations
    conv = await store.create(tenant, {}, [user_message("keep", "msg_keep"), user_message("drop", "msg_drop")])
    found = await store.item(tenant, conv.id, "msg_drop")
    assert found is not None and found[1] is not None and texts([found[1]]) == ["drop"]
    assert await store.delete_item(tenant, conv.id, "msg_drop") == (conv, True)
    assert await store.delete_item(tenant, conv.id, "msg_drop") == (conv, False)
    assert await store.item(tenant, conv.id, "msg_drop") == (conv, None)
    assert texts(await store.all_items(tenant, conv.id) or []) == ["keep"]


async def test_metadata_is_replaced(state: ResponseState, tenant: str) -> None:
    store = state.conversations
    conv = await store.create(tenant, {"a": "1", "b": "2"}, [])
    updated = await store.update(tenant, conv.id, {"c": "3"})
    assert updated is not None and updated.metadata == {"c": "3"} and updated.id == conv.id


async def test_another_tenants_conversation_is_absent(state: ResponseState, tenant: str) -> None:
    store = state.conversations
    conv = await store.create(tenant, {}, [user_message("secret", "msg_secret")])
    other = tenant + "-other"
    assert await store.get(other, conv.id) is None
    assert await store.all_items(other, conv.id) is None
    assert not await store.append(other, conv.id, [user_message("intruder")])
    assert await store.add(other, conv.id, [user_message("intruder")]) is None
    assert await store.items(other, conv.id, after=None, limit=5, order="asc") is None
    assert await store.item(other, conv.id, "msg_secret") is None
    assert await store.delete_item(other, conv.id, "msg_secret") is None
    assert await store.update(other, conv.id, {"x": "y"}) is None
    assert not await store.delete(other, conv.id)
    assert texts(await store.all_items(tenant, conv.id) or []) == ["secret"]


async def test_deleting_a_conversation_deletes_its_items(state: ResponseState, tenant: str, sql: Query) -> None:
    store = state.conversations
    conv = await store.create(tenant, {}, [user_message("gone")])
    assert await store.delete(tenant, conv.id)
    assert await store.get(tenant, conv.id) is None and not await store.delete(tenant, conv.id)
    assert await sql("SELECT count(*) FROM llmops_conversation_items WHERE tenant = %s", tenant) == [(0,)]
