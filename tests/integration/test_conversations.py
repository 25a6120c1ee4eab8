"""The Conversations API through real gateway processes with the openai SDK (real PostgreSQL, this
module's own database): every call of ``client.conversations``, paging, tenant isolation, bad input,
another replica answering, and state kept over a restart."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.conftest import GatewayFactory
from tests.support.configs import sim_config
from tests.support.openapi import validate
from tests.support.processes import ServerProcess
from tests.support.services import new_database

pytestmark = pytest.mark.integration

KEY_A, KEY_B = "sk-conversations-a-0123456789", "sk-conversations-b-0123456789"


def gateway_config(sim_url: str, dsn: str) -> dict[str, object]:
    return sim_config(
        sim_url, "sim-chat", chain=["authn", "authz", "limits"], policy={"reload_interval_s": 0},
        auth={"static_keys": [{"key": KEY_A, "key_id": "a", "tenant": "team-a"},
                              {"key": KEY_B, "key_id": "b", "tenant": "team-b"}]},
        postgres={"dsn": dsn},
    )


@pytest.fixture(scope="module")
def dsn(postgres_dsn: str) -> str:
    return new_database(postgres_dsn, "conversations")


@pytest.fixture(scope="module")
def gateway(start_gateway: GatewayFactory, sim: ServerProcess, dsn: str) -> ServerProcess:
    return start_gateway(gateway_config(sim.url, dsn))


def client(gateway: ServerProcess, key: str = KEY_A) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)


def raw(gateway: ServerProcess, method: str, path: str, body: Any = None, key: str = KEY_A) -> httpx.Response:
    return httpx.request(method, f"{gateway.url}/v1{path}", headers={"authorization": f"Bearer {key}"},
                         content=orjson.dumps(body) if body is not None else None)


def hello(text: str) -> Any:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def test_create_retrieve_update_delete(gateway: ServerProcess) -> None:
    sdk = client(gateway)
    conversation = sdk.conversations.create(metadata={"topic": "zebras"}, items=[hello("Hi!")])
    assert conversation.id.startswith("conv_") and conversation.metadata == {"topic": "zebras"}
    got = sdk.conversations.retrieve(conversation.id)
    assert (got.id, got.created_at, got.metadata) == (conversation.id, conversation.created_at, {"topic": "zebras"})
    validate(orjson.loads(sdk.conversations.with_raw_response.retrieve(conversation.id).content),
             "ConversationResource")
    updated = sdk.conversations.update(conversation.id, metadata={"topic": "horses", "lang": "en"})
    assert updated.metadata == {"topic": "horses", "lang": "en"}
    assert sdk.conversations.retrieve(conversation.id).metadata == {"topic": "horses", "lang": "en"}
    deleted = sdk.conversations.delete(conversation.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (conversation.id, True, "conversation.deleted")
    validate(deleted.model_dump(), "DeletedConversationResource")
    for call in (lambda: sdk.conversations.retrieve(conversation.id),
                 lambda: sdk.conversations.delete(conversation.id),
                 lambda: sdk.conversations.items.list(conversation.id)):
        with pytest.raises(openai.NotFoundError):
            call()


def test_an_empty_conversation(gateway: ServerProcess) -> None:
    sdk = client(gateway)
    conversation = sdk.conversations.create()
    assert conversation.metadata == {} or conversation.metadata is None
    page = orjson.loads(raw(gateway, "GET", f"/conversations/{conversation.id}/items").content)
    assert page == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}
    assert raw(gateway, "POST", "/conversations", body=None).status_code == 200  # no body at all


def test_items_are_added_listed_retrieved_and_deleted(gateway: ServerProcess) -> None:
    sdk = client(gateway)
    conversation = sdk.conversations.create(items=[hello("one")])
    added = sdk.conversations.items.with_raw_response.create(conversation.id, items=[
        {"type": "message", "role": "assistant", "content": "two"},
        {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": '{"city": "Oslo"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": '{"temp": 3}'},
        {"role": "user", "content": "four"},
    ])
    page = orjson.loads(added.content)
    validate(page, "ConversationItemList")
    assert [i["type"] for i in page["data"]] == ["message", "function_call", "function_call_output", "message"]
    everything: list[Any] = list(sdk.conversations.items.list(conversation.id, limit=2, order="asc"))
    assert [i.type for i in everything] == ["message", "message", "function_call", "function_call_output",
                                            "message"]
    assert everything[0].content[0].text == "one" and everything[1].content[0].text == "two"
    newest_first = [i.id for i in sdk.conversations.items.list(conversation.id)]
    assert newest_first == [i.id for i in everything][::-1]
    listed = orjson.loads(raw(gateway, "GET", f"/conversations/{conversation.id}/items?limit=2&order=asc").content)
    validate(listed, "ConversationItemList")
    assert listed["has_more"] and listed["last_id"] == everything[1].id
    call = sdk.conversations.items.with_raw_response.retrieve(everything[2].id, conversation_id=conversation.id)
    validate(orjson.loads(call.content), "ConversationItem")
    parsed: Any = call.parse()
    assert parsed.type == "function_call" and parsed.arguments == '{"city": "Oslo"}'
    after = sdk.conversations.items.delete(everything[2].id, conversation_id=conversation.id)
    assert after.id == conversation.id and after.object == "conversation"
    with pytest.raises(openai.NotFoundError):
        sdk.conversations.items.retrieve(everything[2].id, conversation_id=conversation.id)
    with pytest.raises(openai.NotFoundError):
        sdk.conversations.items.delete(everything[2].id, conversation_id=conversation.id)
    assert len(list(sdk.conversations.items.list(conversation.id))) == 4


def test_another_tenants_conversation_is_a_404(gateway: ServerProcess) -> None:
    mine = client(gateway).conversations.create(metadata={"secret": "yes"}, items=[hello("private")])
    item: Any = next(iter(client(gateway).conversations.items.list(mine.id)))
    other = client(gateway, KEY_B)
    for call in (lambda: other.conversations.retrieve(mine.id),
                 lambda: other.conversations.update(mine.id, metadata={"x": "y"}),
                 lambda: other.conversations.delete(mine.id),
                 lambda: other.conversations.items.create(mine.id, items=[hello("intruder")]),
                 lambda: other.conversations.items.list(mine.id),
                 lambda: other.conversations.items.retrieve(item.id, conversation_id=mine.id),
                 lambda: other.conversations.items.delete(item.id, conversation_id=mine.id)):
        with pytest.raises(openai.NotFoundError):
            call()
    assert client(gateway).conversations.retrieve(mine.id).metadata == {"secret": "yes"}
    assert [i.id for i in client(gateway).conversations.items.list(mine.id)] == [item.id]


@pytest.mark.parametrize(("body", "param"), [
    ({"items": "not a list"}, "items"),
    ({"items": [hello(str(i)) for i in range(21)]}, "items"),
    ({"items": [{"type": "message", "role": "robot", "content": "x"}]}, "items[0].role"),
    ({"items": [{"type": "message", "role": "user", "content": "nul\u0000here"}]}, "items[0].content"),
    ({"items": [{"type": "message", "role": "user", "content": [{"type": "output_text", "text": "x"}]}]},
     "items[0].content[0].type"),
    ({"items": [{"type": "function_call", "call_id": "c", "name": "f"}]}, "items[0].arguments"),
    ({"items": [{"type": "computer_call"}]}, "items[0].type"),
    ({"items": [{"id": "bad id", "role": "user", "content": "x"}]}, "items[0].id"),
    ({"metadata": {"k": 1}}, "metadata.k"),
    ({"metadata": {str(i): "v" for i in range(17)}}, "metadata"),
    ({"metadata": {"k": "v" * 513}}, "metadata.k"),
])
def test_bad_input_is_a_400_naming_the_param(gateway: ServerProcess, body: dict[str, Any], param: str) -> None:
    answer = raw(gateway, "POST", "/conversations", body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == param


def test_bad_input_on_the_other_routes(gateway: ServerProcess) -> None:
    conversation = client(gateway).conversations.create()
    one = f"/conversations/{conversation.id}"
    checks = [("POST", one, {}, "metadata"), ("POST", one, {"metadata": "x"}, "metadata"),
              ("POST", one + "/items", {}, "items"), ("POST", one + "/items", {"items": []}, "items"),
              ("GET", one + "/items?limit=101", None, "limit"), ("GET", one + "/items?order=sideways", None, "order"),
              ("GET", one + "/items?include[]=nope", None, "include")]
    for method, path, body, param in checks:
        answer = raw(gateway, method, path, body)
        assert answer.status_code == 400 and answer.json()["error"]["param"] == param, (path, answer.text)
    broken = httpx.post(f"{gateway.url}/v1{one}", headers={"authorization": f"Bearer {KEY_A}"}, content=b"{nope")
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "invalid_json"
    for path in ("/conversations/conv_missing", "/conversations/bad%20id", one + "/items/msg_missing"):
        answer = raw(gateway, "GET", path)
        assert answer.status_code == 404 and answer.json()["error"]["type"] == "invalid_request_error", path


def test_another_replica_answers_and_a_restart_keeps_the_state(start_gateway: GatewayFactory, sim: ServerProcess,
                                                                dsn: str, gateway: ServerProcess) -> None:
    conversation = client(gateway).conversations.create(metadata={"kept": "yes"}, items=[hello("remember me")])
    replica = start_gateway(gateway_config(sim.url, dsn))
    assert client(replica).conversations.retrieve(conversation.id).metadata == {"kept": "yes"}
    client(replica).conversations.items.create(conversation.id, items=[hello("from the replica")])
    replica.stop()
    restarted = start_gateway(gateway_config(sim.url, dsn))
    items: list[Any] = list(client(restarted).conversations.items.list(conversation.id, order="asc"))
    texts = [i.content[0].text for i in items]
    assert texts == ["remember me", "from the replica"]
    restarted.stop()
