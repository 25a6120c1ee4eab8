"""Anthropic Messages request → chat request, as pure functions (validation through the endpoint's parser)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.http.messages.request import to_chat_request
from gateway.http.messages.schema import MessagesRequest
from gateway.http.parsing import validate
from gateway.kernel.errors import InvalidRequest
from routers.backends.anthropic_shapes import to_messages_request

WEATHER = {"name": "get_weather", "description": "Weather by city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}


def chat(**body: Any) -> dict[str, Any]:
    raw = {"model": "m", "max_tokens": 64, **body}
    return to_chat_request(validate(raw, MessagesRequest), raw)


def user(content: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": content}]


def test_a_plain_request_keeps_model_and_limits_and_drops_top_k() -> None:
    out = chat(messages=user("Hi"), temperature=0.2, top_p=0.9, top_k=5, stop_sequences=["END", "STOP"],
               metadata={"user_id": "u-1"})
    assert out == {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}],
                   "temperature": 0.2, "top_p": 0.9, "stop": ["END", "STOP"], "user": "u-1"}


def test_system_as_a_string_or_text_blocks_becomes_the_first_message() -> None:
    assert chat(system="Be brief", messages=user("Hi"))["messages"][0] == {"role": "system", "content": "Be brief"}
    blocks = [{"type": "text", "text": "One."}, {"type": "text", "text": "Two.", "cache_control": {"type": "x"}}]
    assert chat(system=blocks, messages=user("Hi"))["messages"][0] == {"role": "system", "content": "One.\n\nTwo."}


def test_text_and_images_become_content_parts() -> None:
    content = [{"type": "text", "text": "What is this?"},
               {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}},
               {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}]
    (message,) = chat(messages=user(content))["messages"]
    assert message == {"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]}


def test_a_tool_round_trip_becomes_tool_calls_and_tool_messages() -> None:
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "I should call it", "signature": "sig"},
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "18C"}]},
            {"type": "text", "text": "Thanks"},
        ]},
    ]
    out = chat(messages=messages, tools=[WEATHER])["messages"]
    assert out[1] == {"role": "assistant", "content": "Let me look.", "tool_calls": [
        {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]}
    assert out[2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"}
    assert out[3] == {"role": "user", "content": "Thanks"}


def test_tool_results_errors_strings_and_images() -> None:
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/plot.png"}}
    content = [
        {"type": "tool_result", "tool_use_id": "a", "content": "boom", "is_error": True},
        {"type": "tool_result", "tool_use_id": "b", "content": [{"type": "text", "text": "see"}, image]},
        {"type": "tool_result", "tool_use_id": "c"},
    ]
    out = chat(messages=user(content))["messages"]
    assert out[0] == {"role": "tool", "tool_call_id": "a", "content": "Error: boom"}
    assert out[1] == {"role": "tool", "tool_call_id": "b", "content": "see"}
    assert out[2] == {"role": "tool", "tool_call_id": "c", "content": ""}
    assert out[3] == {"role": "user", "content": [{"type": "image_url",
                                                   "image_url": {"url": "https://example.com/plot.png"}}]}


def test_an_assistant_turn_with_only_a_tool_call_has_no_text() -> None:
    turn = [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]
    out = chat(messages=[*user("go"), {"role": "assistant", "content": turn}])["messages"]
    assert out[1]["content"] is None and out[1]["tool_calls"][0]["function"]["arguments"] == "{}"


def test_tools_become_functions() -> None:
    out = chat(messages=user("Hi"), tools=[WEATHER, {"name": "noop", "input_schema": {"type": "object"},
                                                     "type": "custom"}])
    assert out["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "description": "Weather by city",
                                          "parameters": WEATHER["input_schema"]}},
        {"type": "function", "function": {"name": "noop", "parameters": {"type": "object"}}},
    ]


@pytest.mark.parametrize(("choice", "expected"), [
    ({"type": "auto"}, {"tool_choice": "auto"}),
    ({"type": "any"}, {"tool_choice": "required"}),
    ({"type": "none"}, {"tool_choice": "none"}),
    ({"type": "tool", "name": "get_weather"},
     {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}}),
    ({"type": "auto", "disable_parallel_tool_use": True}, {"tool_choice": "auto", "parallel_tool_calls": False}),
])
def test_tool_choice(choice: dict[str, Any], expected: dict[str, Any]) -> None:
    out = chat(messages=user("Hi"), tools=[WEATHER], tool_choice=choice)
    assert {k: out[k] for k in ("tool_choice", "parallel_tool_calls") if k in out} == expected


def test_tool_choice_without_tools_is_not_sent() -> None:
    assert "tool_choice" not in chat(messages=user("Hi"), tool_choice={"type": "auto"})


def test_stream_asks_for_usage() -> None:
    out = chat(messages=user("Hi"), stream=True)
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}
    assert "stream" not in chat(messages=user("Hi"), stream=False)


def test_unknown_fields_pass_through_and_anthropic_only_ones_are_dropped() -> None:
    out = chat(messages=user("Hi"), llmops={"cache": "bypass"}, sim={"ttft_ms": 1},
               thinking={"type": "enabled", "budget_tokens": 1024}, service_tier="auto", speed="fast",
               cache_control={"type": "ephemeral"})
    assert out["llmops"] == {"cache": "bypass"} and out["sim"] == {"ttft_ms": 1}
    assert not {"thinking", "service_tier", "speed", "cache_control"} & set(out)


def test_structured_output_becomes_a_json_schema_response_format() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    out = chat(messages=user("Hi"), output_config={"format": {"type": "json_schema", "schema": schema},
                                                   "effort": "high"})
    assert out["response_format"] == {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    assert "output_config" not in out and "response_format" not in chat(messages=user("Hi"),
                                                                        output_config={"effort": "low"})


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": user("Hi"), "max_tokens": None}, "max_tokens"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
    ({"messages": user([{"type": "document", "source": {}}])}, "messages[0].content[0].type"),
    ({"messages": user([{"type": "image", "source": {"type": "file", "file_id": "f"}}])},
     "messages[0].content[0].source.type"),
    ({"messages": user("Hi"), "temperature": 1.5}, "temperature"),
    ({"messages": user("Hi"), "tool_choice": {"type": "tool"}}, "tool_choice.name"),
    ({"messages": user("Hi"), "tools": [{"name": "web_search", "type": "web_search_20250305"}]}, "tools[0].type"),
    ({"messages": user("Hi"), "tools": [{"name": "f"}]}, "tools[0].input_schema"),
])
def test_bad_requests_name_the_parameter(body: dict[str, Any], param: str) -> None:
    raw = {"model": "m", "max_tokens": 64, **body}
    raw = {k: v for k, v in raw.items() if v is not None}
    with pytest.raises(InvalidRequest) as caught:
        to_chat_request(validate(raw, MessagesRequest), raw)
    assert caught.value.param == param and caught.value.status == 400


def test_the_chat_request_translates_back_to_the_same_conversation() -> None:
    """Through an Anthropic-type backend the chat request goes back to Messages: nothing is lost on the way."""
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}]},
    ]
    out = to_messages_request(chat(system="Be brief", messages=messages, tools=[WEATHER],
                                   tool_choice={"type": "any"}, stop_sequences=["END"]), "claude-x", 1)
    assert out["system"] == "Be brief" and out["max_tokens"] == 64 and out["stop_sequences"] == ["END"]
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        messages[1],
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}]},
    ]
    assert out["tools"] == [WEATHER] and out["tool_choice"] == {"type": "any"}
