"""Stored responses through a real gateway process, with the openai SDK: rows written by the service
from the test (as ``POST /v1/responses`` does), then retrieved, paged, deleted, cancelled, and a
background response's stream resumed; tenant isolation; the retention sweep. PostgreSQL is real,
and the database is this module's own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import openai
import orjson
import psycopg
import pytest
import pytest_asyncio

from gateway.kernel.config.sections.responses import BackgroundSettings, ResponsesSettings
from gateway.services.responses import ResponseState
from gateway.services.responses.runner import BackgroundRunner, Emit
from tests.conftest import GatewayFactory
from tests.support.configs import sim_config
from tests.support.openapi import validate
from tests.support.processes import ServerProcess
from tests.support.response_objects import opened_state, response_object, user_message
from tests.support.services import new_database

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

KEY_A, KEY_B = "sk-stored-team-a-0123456789", "sk-stored-team-b-0123456789"
DAY = 86_400


def gateway_config(sim_url: str, dsn: str) -> dict[str, object]:
    return sim_config(
        sim_url, "sim-chat", chain=["authn", "authz", "limits"], policy={"reload_interval_s": 0},
        auth={"static_keys": [{"key": KEY_A, "key_id": "a", "tenant": "team-a"},
                              {"key": KEY_B, "key_id": "b", "tenant": "team-b"}]},
        postgres={"dsn": dsn},
        # concurrency 0: this gateway runs no background work (the tests' own runners do), but recovers it
        responses={"retention_days": 1, "sweep_interval_s": 0.2,
                   "background": {"poll_interval_s": 0.05, "recover_interval_s": 0.2, "max_attempts": 1,
                                  "concurrency": 0}},
    )


@pytest.fixture(scope="module")
def dsn(postgres_dsn: str) -> str:
    return new_database(postgres_dsn, "stored")


@pytest.fixture(scope="module")
def gateway(start_gateway: GatewayFactory, sim: ServerProcess, dsn: str) -> ServerProcess:
    return start_gateway(gateway_config(sim.url, dsn))


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def state(dsn: str) -> AsyncIterator[ResponseState]:
    # as the gateway's: whichever process recovers the dead runner's work decides the same way
    async with opened_state(dsn, ResponsesSettings(background=BackgroundSettings(max_attempts=1))) as opened:
        yield opened


def client(gateway: ServerProcess, key: str = KEY_A) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)


async def stored(state: ResponseState, n_items: int = 1, **fields: Any) -> dict[str, Any]:
    response = response_object(**fields)
    items = [user_message(f"question {i}", f"msg_q{i}") for i in range(n_items)]
    await state.responses.put("team-a", response, items)
    return response


async def test_retrieve_answers_the_stored_object(gateway: ServerProcess, state: ResponseState) -> None:
    response = await stored(state, output="Zebras are striped.")
    got = client(gateway).responses.retrieve(response["id"])
    assert got.id == response["id"] and got.status == "completed" and got.output_text == "Zebras are striped."
    raw = client(gateway).responses.with_raw_response.retrieve(response["id"])
    validate(orjson.loads(raw.content), "Response")
    assert orjson.loads(raw.content) == response


async def test_input_items_are_paged_like_openai(gateway: ServerProcess, state: ResponseState) -> None:
    response = await stored(state, n_items=7)
    sdk = client(gateway)
    ascending = [item.id for item in sdk.responses.input_items.list(response["id"], limit=3, order="asc")]
    assert ascending == [f"msg_q{i}" for i in range(7)]  # the SDK follows ``after`` = last_id over 3 pages
    descending = [item.id for item in sdk.responses.input_items.list(response["id"], limit=2)]
    assert descending == ascending[::-1]
    page = orjson.loads(sdk.responses.input_items.with_raw_response.list(
        response["id"], limit=3, after="msg_q2", order="asc").content)
    validate(page, "ResponseItemList")
    assert (page["first_id"], page["last_id"], page["has_more"]) == ("msg_q3", "msg_q5", True)


async def test_bad_paging_parameters_are_400s_naming_them(gateway: ServerProcess, state: ResponseState) -> None:
    response = await stored(state)
    url = f"{gateway.url}/v1/responses/{response['id']}"
    headers = {"authorization": f"Bearer {KEY_A}"}
    for query, param in [("limit=0", "limit"), ("limit=x", "limit"), ("order=up", "order"),
                         ("after=bad%20id", "after"), ("include=everything", "include")]:
        answer = httpx.get(f"{url}/input_items?{query}", headers=headers)
        assert answer.status_code == 400 and answer.json()["error"]["param"] == param, (query, answer.text)
    for query, param in [("stream=maybe", "stream"), ("stream=true&starting_after=-5", "starting_after"),
                         ("stream=true", "stream")]:  # the last: not a background response
        answer = httpx.get(f"{url}?{query}", headers=headers)
        assert answer.status_code == 400 and answer.json()["error"]["param"] == param, (query, answer.text)


async def test_delete_removes_it_for_good(gateway: ServerProcess, state: ResponseState) -> None:
    response = await stored(state, n_items=2)
    sdk = client(gateway)
    answer = httpx.delete(f"{gateway.url}/v1/responses/{response['id']}",
                          headers={"authorization": f"Bearer {KEY_A}"})
    assert answer.json() == {"id": response["id"], "object": "response", "deleted": True}
    for call in (lambda: sdk.responses.retrieve(response["id"]), lambda: sdk.responses.delete(response["id"]),
                 lambda: sdk.responses.input_items.list(response["id"])):
        with pytest.raises(openai.NotFoundError) as caught:
            call()
        assert caught.value.body == {"message": f"Response with id '{response['id']}' not found.",
                                     "type": "invalid_request_error", "param": "response_id", "code": "not_found"}
    assert await state.responses.get("team-a", response["id"]) is None


async def test_the_sdks_delete_and_an_unknown_id(gateway: ServerProcess, state: ResponseState) -> None:
    response = await stored(state)
    sdk = client(gateway)
    sdk.responses.delete(response["id"])
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve("resp_does_not_exist")
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve("not an id: \u00e9")


async def test_another_tenants_response_is_a_404(gateway: ServerProcess, state: ResponseState) -> None:
    response = await stored(state, background=True, status="queued", output=None)
    other = client(gateway, KEY_B)
    for call in (lambda: other.responses.retrieve(response["id"]),
                 lambda: other.responses.input_items.list(response["id"]),
                 lambda: other.responses.cancel(response["id"]),
                 lambda: other.responses.delete(response["id"])):
        with pytest.raises(openai.NotFoundError):
            call()
    still = await state.responses.get("team-a", response["id"])
    assert still is not None and still.response["status"] == "queued"


async def test_cancel_marks_a_background_response_cancelled(gateway: ServerProcess, state: ResponseState) -> None:
    queued = await stored(state, background=True, status="queued", output=None)
    await state.queue.enqueue("team-a", queued["id"])
    sdk = client(gateway)
    cancelled = sdk.responses.cancel(queued["id"])
    assert cancelled.status == "cancelled"
    raw = orjson.loads(sdk.responses.with_raw_response.cancel(queued["id"]).content)
    validate(raw, "Response")
    assert raw["status"] == "cancelled"  # cancelling again answers the final object
    assert sdk.responses.retrieve(queued["id"]).status == "cancelled"
    plain = await stored(state)
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.responses.cancel(plain["id"])
    assert caught.value.body["message"] == "Only responses created with background can be cancelled."  # type: ignore[index]
    assert caught.value.body["param"] == "response_id"  # type: ignore[index]


async def test_a_background_stream_is_resumed_after_a_sequence_number(gateway: ServerProcess,
                                                                      state: ResponseState) -> None:
    response = await stored(state, background=True, status="queued", output=None)
    assert await state.queue.enqueue("team-a", response["id"])
    go = asyncio.Event()

    async def work(tenant: str, response_id: str, emit: Emit) -> dict[str, Any]:
        for i in range(3):
            await emit({"type": "response.output_text.delta", "delta": f"part {i} "})
        await go.wait()
        for i in range(3, 5):
            await emit({"type": "response.output_text.delta", "delta": f"part {i} "})
        return response_object(response_id, output="part 0 part 1 part 2 part 3 part 4", background=True)

    runner = BackgroundRunner(state.queue, work, state.settings.background, owner="stream-test")
    runner.start()
    sdk = openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=KEY_A, max_retries=0)
    seen: list[Any] = []

    async def follow() -> None:
        stream = await sdk.responses.retrieve(response["id"], stream=True, starting_after=0)
        async for event in stream:
            seen.append(event)

    follower = asyncio.create_task(follow())
    deadline = time.monotonic() + 30
    while len(seen) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert [e.sequence_number for e in seen] == [1, 2]  # the stored events after 0, while the run waits
    go.set()
    await asyncio.wait_for(follower, 30)
    await runner.aclose()
    assert [e.sequence_number for e in seen] == [1, 2, 3, 4, 5]
    assert [e.type for e in seen] == ["response.output_text.delta"] * 4 + ["response.completed"]
    assert seen[-1].response.output_text == "part 0 part 1 part 2 part 3 part 4"
    replay = httpx.get(f"{gateway.url}/v1/responses/{response['id']}?stream=true&starting_after=3",
                       headers={"authorization": f"Bearer {KEY_A}"})
    assert replay.headers["content-type"].startswith("text/event-stream")
    frames = [f for f in replay.text.split("\n\n") if f]
    assert [f.split("\n")[0] for f in frames] == ["event: response.output_text.delta", "event: response.completed"]
    validate(orjson.loads(frames[-1].split("\n")[1].removeprefix("data: ")), "ResponseCompletedEvent")


async def test_a_cancelled_stream_ends(gateway: ServerProcess, state: ResponseState) -> None:
    response = await stored(state, background=True, status="queued", output=None)
    await state.queue.enqueue("team-a", response["id"])
    client(gateway).responses.cancel(response["id"])
    answer = httpx.get(f"{gateway.url}/v1/responses/{response['id']}?stream=true",
                       headers={"authorization": f"Bearer {KEY_A}"}, timeout=30)
    assert answer.status_code == 200 and answer.text == ""


async def test_work_whose_runner_died_is_failed_by_the_gateway_with_a_reason(gateway: ServerProcess,
                                                                           state: ResponseState) -> None:
    response = response_object(status="queued", background=True, output=None)
    await state.queue.submit("team-a", response, [user_message("work")])
    claimed = [j for j in await state.queue.claim("a-runner-that-dies", 100, 1) if j.response_id == response["id"]]
    assert claimed and client(gateway).responses.retrieve(response["id"]).status == "in_progress"
    deadline = time.monotonic() + 30  # nobody renews the lease; the gateway's recovery (max_attempts: 1) fails it
    while client(gateway).responses.retrieve(response["id"]).status == "in_progress":
        assert time.monotonic() < deadline, "never recovered"
        await asyncio.sleep(0.1)
    got = client(gateway).responses.retrieve(response["id"])
    assert got.status == "failed" and got.error is not None
    assert got.error.message == "The gateway restarted while this response was in progress."
    events = list(client(gateway).responses.retrieve(response["id"], stream=True))
    assert [e.type for e in events] == ["response.failed"]
    assert events[0].response.status == "failed"  # type: ignore[union-attr]


async def test_old_responses_are_swept(gateway: ServerProcess, state: ResponseState, dsn: str) -> None:
    old = await stored(state)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        # retention_days: 1, counted from when the gateway stored it
        await conn.execute("UPDATE llmops_responses SET created_at = %s WHERE id = %s",
                           (int(time.time() - 2 * DAY), old["id"]))
    recent = await stored(state)
    sdk = client(gateway)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            sdk.responses.retrieve(old["id"])
        except openai.NotFoundError:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the old response was never swept")
    assert sdk.responses.retrieve(recent["id"]).id == recent["id"]


async def test_an_unreachable_database_is_a_503_not_a_500(start_gateway: GatewayFactory, sim: ServerProcess) -> None:
    down = start_gateway(sim_config(sim.url, "sim-chat", postgres={
        "dsn": "postgresql://nobody@127.0.0.1:9/none", "connect_timeout_s": 1}))
    for method, path in [("GET", "/v1/responses/resp_1"), ("POST", "/v1/conversations"),
                         ("GET", "/v1/conversations/conv_1/items")]:
        answer = httpx.request(method, f"{down.url}{path}", content=b"{}", timeout=30)
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "response_store_unavailable"
        assert "nobody" not in answer.text
    down.stop()


async def test_item_references_are_resolved_from_anything_the_tenant_keeps(gateway: ServerProcess) -> None:
    sdk = client(gateway)
    long_text = "remember this " * 60
    first = sdk.responses.create(model="sim-chat", input=long_text)
    asked = sdk.responses.input_items.list(first.id).data[0].id
    answered = first.output[0].id
    plain = sdk.responses.create(model="sim-chat", input="hi", store=False)
    refs: Any = [{"type": "item_reference", "id": asked}, {"type": "item_reference", "id": answered},
                 {"role": "user", "content": "hi"}]
    both = sdk.responses.create(model="sim-chat", store=False, input=refs)
    assert plain.usage is not None and both.usage is not None
    assert both.usage.input_tokens > plain.usage.input_tokens + 50  # the referred question reached the model
    with pytest.raises(openai.NotFoundError) as unknown:
        sdk.responses.create(model="sim-chat", input=[{"type": "item_reference", "id": "msg_nope"}])
    body: Any = unknown.value.body
    assert body["param"] == "input" and body["code"] == "item_not_found"
    with pytest.raises(openai.NotFoundError):  # another tenant's item is not there at all
        client(gateway, KEY_B).responses.create(model="sim-chat", input=[{"type": "item_reference", "id": asked}])
    with pytest.raises(openai.BadRequestError) as bad:
        sdk.responses.create(model="sim-chat", input=cast(Any, [{"type": "item_reference"}]))
    body = bad.value.body
    assert body["param"] == "input[0].id"
