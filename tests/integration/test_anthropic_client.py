"""Issue 12, part 5: the ``anthropic`` SDK against a real gateway, served by both kinds of backend.

One simulator process serves both sides: ``sim-chat`` through an ``openai``-type backend (the gateway
translates Messages ⇄ chat completions) and ``claude-chat`` through an ``anthropic``-type backend (Messages
→ chat in the gateway, chat → Messages in the adapter, and back). Every test runs on both models; the
simulator's request log shows which upstream API each request reached.
"""

from __future__ import annotations

import base64
import json
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from tests.conftest import GatewayFactory, SimFactory
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.integration

KEY = "sk-messages-user-0123456789"
SCOPED = "sk-messages-scoped-0123456789"
LIMITED = "sk-messages-limited-0123456789"
MODELS = ("sim-chat", "claude-chat")
UPSTREAM_PATH = {"sim-chat": "/v1/chat/completions", "claude-chat": "/v1/messages"}
WEATHER: Any = {"name": "get_weather", "description": "Current weather for a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
ASK: Any = [{"role": "user", "content": "Hello from the anthropic SDK"}]


def config(sim: ServerProcess, **extra: object) -> dict[str, object]:
    return {
        "backends": [{"name": "sim", "type": "openai", "base_url": f"{sim.url}/v1"},
                     {"name": "claude", "type": "anthropic", "base_url": f"{sim.url}/v1", "api_key": "sk-up"}],
        "models": [{"name": "sim-chat", "deployments": [{"backend": "sim"}]},
                   {"name": "claude-chat", "deployments": [{"backend": "claude", "model": "claude-sim"}]}],
        "routing": {"health": {"interval_s": 0}},
        **extra,
    }


def keys(*extra: dict[str, object]) -> dict[str, object]:
    static = [{"key": KEY, "key_id": "messages", "tenant": "t"},
              {"key": SCOPED, "key_id": "scoped", "tenant": "t", "models": ["sim-chat"]}, *extra]
    return {"static_keys": static}


@pytest.fixture(scope="module")
def upstream(start_sim: SimFactory) -> ServerProcess:
    return start_sim("--name", "messages")


@pytest.fixture(scope="module")
def gateway(upstream: ServerProcess, start_gateway: GatewayFactory) -> ServerProcess:
    return start_gateway(config(upstream, chain=["authn"], auth=keys()))


@pytest.fixture(scope="module")
def client(gateway: ServerProcess) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=KEY, max_retries=0)


@pytest.fixture(params=MODELS)
def model(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def last_upstream(sim: ServerProcess, model: str) -> dict[str, Any]:
    """The last request the simulator received on ``model``'s upstream API."""
    log = httpx.get(f"{sim.url}/_sim/requests").json()["data"]
    seen: dict[str, Any] = [r for r in log if r["path"] == UPSTREAM_PATH[model]][-1]
    return seen


def wait_for_upstream(sim: ServerProcess, model: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        log = httpx.get(f"{sim.url}/_sim/requests").json()["data"]
        if any(r["path"] == UPSTREAM_PATH[model] for r in log):
            return
        time.sleep(0.02)
    raise AssertionError(f"no request reached {sim.url} in {timeout_s}s")


# --- create, stream, system prompt, stop sequences, images ----------------------------------


def test_create(client: anthropic.Anthropic, upstream: ServerProcess, model: str) -> None:
    raw = client.messages.with_raw_response.create(model=model, max_tokens=64, messages=ASK)
    message = raw.parse()
    assert raw.headers["x-llmops-backend"] == ("sim" if model == "sim-chat" else "claude")
    assert message.type == "message" and message.role == "assistant" and message.model == model
    assert message.id.startswith("msg_") and not message.id.startswith("msg_msg_")
    (block,) = message.content
    assert block.type == "text" and block.text.startswith("Simulated answer to: Hello from the anthropic SDK")
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens > 0 and message.usage.output_tokens == len(block.text.split())
    assert last_upstream(upstream, model)["body"]["max_tokens"] == 64


def test_system_prompt_reaches_the_backend(client: anthropic.Anthropic, upstream: ServerProcess, model: str) -> None:
    plain = client.messages.create(model=model, max_tokens=64, messages=ASK)
    told = client.messages.create(model=model, max_tokens=64, messages=ASK,
                                  system=[{"type": "text", "text": "You are terse."}])
    body = last_upstream(upstream, model)["body"]
    if model == "sim-chat":
        assert body["messages"][0] == {"role": "system", "content": "You are terse."}
    else:
        assert body["system"] == "You are terse."
    assert told.usage.input_tokens == plain.usage.input_tokens + 3  # the simulator counts words


def test_stream_text_deltas_and_the_final_message(client: anthropic.Anthropic, model: str) -> None:
    whole = client.messages.create(model=model, max_tokens=64, messages=ASK)
    with client.messages.stream(model=model, max_tokens=64, messages=ASK) as stream:
        deltas = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(deltas) > 3 and "".join(deltas) == whole.content[0].text  # type: ignore[union-attr]
    assert final.content[0].text == whole.content[0].text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn" and final.model == model and final.id.startswith("msg_")
    assert final.usage.output_tokens == whole.usage.output_tokens
    assert final.usage.input_tokens == whole.usage.input_tokens  # the backend's count replaced the estimate


def test_raw_event_sequence(client: anthropic.Anthropic, model: str) -> None:
    events = list(client.messages.create(model=model, max_tokens=64, messages=ASK, stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_start") == kinds.count("content_block_stop") == 1
    assert {e.type for e in events} == {"message_start", "content_block_start", "content_block_delta",
                                        "content_block_stop", "message_delta", "message_stop"}  # ping skipped


@pytest.mark.parametrize("stream", [False, True])
def test_stop_sequences(client: anthropic.Anthropic, model: str, stream: bool) -> None:
    kwargs: Any = {"model": model, "max_tokens": 64, "messages": ASK, "stop_sequences": [" answer", "never"]}
    if stream:
        with client.messages.stream(**kwargs) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**kwargs)
    assert message.content[0].text == "Simulated"  # type: ignore[union-attr]
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == " answer"


def test_max_tokens(client: anthropic.Anthropic, model: str) -> None:
    message = client.messages.create(model=model, max_tokens=2, messages=ASK)
    assert message.content[0].text == "Simulated answer"  # type: ignore[union-attr]
    assert message.stop_reason == "max_tokens"


def test_images_base64_and_url(client: anthropic.Anthropic, model: str) -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
    content: Any = [{"type": "text", "text": "What are these?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}]
    message = client.messages.create(model=model, max_tokens=64, messages=[{"role": "user", "content": content}])
    assert "[saw 2 image(s)" in message.content[0].text  # type: ignore[union-attr]


def test_structured_output_through_a_chat_backend(client: anthropic.Anthropic, upstream: ServerProcess) -> None:
    """``output_config.format`` becomes ``response_format``; the simulator answers with a matching object."""
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": False}
    message = client.messages.create(model="sim-chat", max_tokens=64, messages=ASK,
                                     output_config={"format": {"type": "json_schema", "schema": schema}})
    assert set(json.loads(message.content[0].text)) == {"city"}  # type: ignore[union-attr]
    sent = last_upstream(upstream, "sim-chat")["body"]["response_format"]
    assert sent == {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


# --- tool use -----------------------------------------------------------------------------


def test_tool_use_round_trip(client: anthropic.Anthropic, model: str) -> None:
    ask: Any = [{"role": "user", "content": 'Use get_weather for "Paris", please.'}]
    first = client.messages.create(model=model, max_tokens=64, tools=[WEATHER], messages=ask)
    assert first.stop_reason == "tool_use"
    (call,) = [b for b in first.content if b.type == "tool_use"]
    assert call.name == "get_weather" and call.input == {"city": "Paris"} and call.id
    result: Any = {"type": "tool_result", "tool_use_id": call.id, "content": [{"type": "text", "text": "18C, sunny"}]}
    history: Any = [*ask, {"role": "assistant", "content": first.content}, {"role": "user", "content": [result]}]
    final = client.messages.create(model=model, max_tokens=64, tools=[WEATHER], messages=history)
    assert final.stop_reason == "end_turn"
    assert final.content[0].text == "The tool returned: 18C, sunny"  # type: ignore[union-attr]


def test_tool_use_streamed(client: anthropic.Anthropic, model: str) -> None:
    ask: Any = [{"role": "user", "content": 'Use get_weather for "Oslo".'}]
    with client.messages.stream(model=model, max_tokens=64, tools=[WEATHER], messages=ask) as stream:
        fragments = [e.partial_json for e in stream if e.type == "input_json"]
        final = stream.get_final_message()
    (call,) = final.content
    assert call.type == "tool_use" and call.input == {"city": "Oslo"} and final.stop_reason == "tool_use"
    assert len(fragments) > 1 and "".join(fragments).replace(" ", "") == '{"city":"Oslo"}'


def test_forced_tool_choice(client: anthropic.Anthropic, model: str) -> None:
    message = client.messages.create(model=model, max_tokens=64, tools=[WEATHER], messages=ASK,
                                     tool_choice={"type": "tool", "name": "get_weather"})
    assert [b.type for b in message.content] == ["tool_use"] and message.stop_reason == "tool_use"
    none = client.messages.create(model=model, max_tokens=64, tools=[WEATHER], tool_choice={"type": "none"},
                                  messages=[{"role": "user", "content": 'Use get_weather for "Paris".'}])
    assert none.stop_reason == "end_turn"


# --- count_tokens ---------------------------------------------------------------------------


def test_count_tokens(client: anthropic.Anthropic, model: str) -> None:
    counted = client.messages.count_tokens(model=model, messages=[{"role": "user", "content": "12345678"}])
    assert counted.input_tokens == 2 + 3  # 8 characters at 4 a token, 3 for the message
    more = client.messages.count_tokens(model=model, system="Be brief and kind.", tools=[WEATHER],
                                        messages=[{"role": "user", "content": "12345678"}])
    assert more.input_tokens > counted.input_tokens


# --- errors in Anthropic's envelope ------------------------------------------------------------


def test_a_wrong_key_is_an_authentication_error(gateway: ServerProcess, model: str) -> None:
    stranger = anthropic.Anthropic(base_url=gateway.url, api_key="sk-not-a-key-0123456789", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        stranger.messages.create(model=model, max_tokens=8, messages=ASK)
    assert caught.value.status_code == 401 and caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(anthropic.AuthenticationError):
        stranger.messages.count_tokens(model=model, messages=ASK)


def test_a_bearer_token_works_too(gateway: ServerProcess, model: str) -> None:
    bearer = anthropic.Anthropic(base_url=gateway.url, auth_token=KEY, max_retries=0)
    assert bearer.messages.create(model=model, max_tokens=8, messages=ASK).stop_reason == "max_tokens"


@pytest.mark.parametrize("body", [
    {"messages": []},
    {"messages": ASK, "extra_body": {"temperature": 1.5}},  # no longer a named argument of the SDK
    {"messages": [{"role": "user", "content": [{"type": "video", "url": "x"}]}]},
    {"messages": ASK, "tools": [{"name": "web_search", "type": "web_search_20250305"}]},
])
def test_a_bad_request_is_a_bad_request_error(client: anthropic.Anthropic, model: str, body: Any) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model=model, max_tokens=8, **body)
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


def test_missing_max_tokens_and_bad_json(gateway: ServerProcess) -> None:
    auth = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    missing = httpx.post(f"{gateway.url}/v1/messages", headers=auth, json={"model": "sim-chat", "messages": ASK})
    assert missing.status_code == 400 and missing.json() == {"type": "error", "error": {
        "type": "invalid_request_error", "message": "Missing required parameter: 'max_tokens'."}}
    broken = httpx.post(f"{gateway.url}/v1/messages", headers=auth, content=b"{nope")
    assert broken.status_code == 400 and broken.json()["error"]["type"] == "invalid_request_error"


def test_an_unknown_model_is_not_found(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(model="no-such-model", max_tokens=8, messages=ASK)
    assert caught.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError):
        client.messages.count_tokens(model="no-such-model", messages=ASK)


def test_a_model_not_granted_is_permission_denied(gateway: ServerProcess) -> None:
    scoped = anthropic.Anthropic(base_url=gateway.url, api_key=SCOPED, max_retries=0)
    assert scoped.messages.create(model="sim-chat", max_tokens=8, messages=ASK).content
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        scoped.messages.create(model="claude-chat", max_tokens=8, messages=ASK)
    assert caught.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
    with pytest.raises(anthropic.PermissionDeniedError):
        scoped.messages.count_tokens(model="claude-chat", messages=ASK)


def test_a_backend_error_before_the_answer(client: anthropic.Anthropic) -> None:
    """The ``sim`` field passes through (as on the chat route) and makes the simulator answer 503."""
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(model="sim-chat", max_tokens=8, messages=ASK, extra_body={"sim": {"status": 503}})
    assert caught.value.status_code == 503 and caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


# --- a stream that breaks off, rate limits, the cache ----------------------------------------------


@pytest.fixture(scope="module")
def breaking(start_sim: SimFactory, start_gateway: GatewayFactory) -> Iterator[anthropic.Anthropic]:
    sim = start_sim("--name", "messages-breaking")
    httpx.post(f"{sim.url}/_sim/config", json={"disconnect_after": 4}).raise_for_status()
    gw = start_gateway(config(sim))
    yield anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0)


def test_a_stream_that_breaks_off_ends_with_an_error_event(breaking: anthropic.Anthropic, model: str) -> None:
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        for event in breaking.messages.create(model=model, max_tokens=64, messages=ASK, stream=True):
            seen.append(event.type)
    assert seen[0] == "message_start" and "message_stop" not in seen
    assert caught.value.body["type"] == "error"  # type: ignore[index]
    assert caught.value.body["error"]["type"] == "api_error"  # type: ignore[index]


def test_rate_limits_answer_in_anthropic_envelope(upstream: ServerProcess, start_gateway: GatewayFactory) -> None:
    limited = {"key": LIMITED, "key_id": "limited", "tenant": "t", "rpm": 2}
    gw = start_gateway(config(upstream, chain=["authn", "limits"], auth=keys(limited), limits={"backend": "local"}))
    client = anthropic.Anthropic(base_url=gw.url, api_key=LIMITED, max_retries=0)
    assert client.messages.count_tokens(model="sim-chat", messages=ASK).input_tokens > 0  # the door's draw
    assert client.messages.create(model="sim-chat", max_tokens=8, messages=ASK).content  # the chain's draw
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="sim-chat", max_tokens=8, messages=ASK)
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert caught.value.response.headers["retry-after"]
    with pytest.raises(anthropic.RateLimitError):
        client.messages.count_tokens(model="sim-chat", messages=ASK)


def test_a_cached_answer_replays_as_a_message_and_as_events(
    upstream: ServerProcess, start_gateway: GatewayFactory, model: str
) -> None:
    gw = start_gateway(config(upstream, chain=["cache"], cache={"backend": "memory"}))
    client = anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0)
    ask: Any = [{"role": "user", "content": f"Cache me on {model}"}]
    zero: Any = {"temperature": 0}  # deterministic, so cacheable
    first = client.messages.with_raw_response.create(model=model, max_tokens=64, messages=ask, extra_body=zero)
    again = client.messages.with_raw_response.create(model=model, max_tokens=64, messages=ask, extra_body=zero)
    assert (first.headers["x-llmops-cache"], again.headers["x-llmops-cache"]) == ("miss", "hit")
    assert again.parse().content == first.parse().content
    with client.messages.stream(model=model, max_tokens=64, messages=ask, extra_body=zero) as stream:
        deltas = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(deltas) == final.content[0].text == first.parse().content[0].text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"


def test_shutdown_past_the_grace_period_says_so_in_anthropic_terms(
    start_sim: SimFactory, start_gateway: GatewayFactory
) -> None:
    """SIGTERM past ``server.graceful_shutdown_s``: an open Messages stream ends with ``event: error``, a
    request still waiting gets a 503 in Anthropic's envelope (rendered by the transport's last resort)."""
    slow = start_sim("--name", "messages-slow", "--itl-ms", "400")
    gw = start_gateway(config(slow, server={"graceful_shutdown_s": 1}))
    assert gw.proc is not None
    waiting: dict[str, httpx.Response] = {}

    def request() -> None:
        body = {"model": "sim-chat", "max_tokens": 8, "messages": ASK, "sim": {"ttft_ms": 8000}}
        waiting["reply"] = httpx.post(f"{gw.url}/v1/messages", json=body, timeout=30)

    blocked = threading.Thread(target=request)
    blocked.start()
    wait_for_upstream(slow, "sim-chat")  # the waiting request is in, before the door closes
    body = {"model": "sim-chat", "max_tokens": 60, "messages": ASK, "stream": True}
    with httpx.stream("POST", f"{gw.url}/v1/messages", json=body, timeout=30) as resp:
        lines = resp.iter_lines()
        assert next(line for line in lines if line.startswith("event: ")) == "event: message_start"
        gw.proc.send_signal(signal.SIGTERM)
        rest = list(lines)
    blocked.join(30)
    names = [line for line in rest if line.startswith("event: ")]
    assert names[-1] == "event: error" and "event: message_stop" not in names
    last = json.loads([line for line in rest if line.startswith("data: ")][-1][6:])
    assert last["type"] == "error" and last["error"]["type"] == "overloaded_error"
    reply = waiting["reply"]
    assert reply.status_code == 503 and reply.json()["error"]["type"] == "overloaded_error"
