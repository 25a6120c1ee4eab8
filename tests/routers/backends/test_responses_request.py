"""Responses request → chat completions request, and the native pass-through's view of it."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from gateway.kernel.errors import InvalidRequest, UnsupportedCapability
from gateway.services.responses_wire.responses_request import chat_request
from routers.backends.responses_native import native_request, patch

WEATHER: dict[str, Any] = {"type": "function", "name": "get_weather", "description": "Weather now",
                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                           "strict": True}


def test_string_input_instructions_and_knobs() -> None:
    chat = chat_request({"model": "m", "input": "Hi", "instructions": "Be brief", "max_output_tokens": 64,
                         "temperature": 0.2, "top_p": 0.9, "user": "u1", "safety_identifier": "s1",
                         "prompt_cache_key": "pk", "reasoning": {"effort": "low"}, "metadata": {"a": "b"},
                         "store": True, "truncation": "auto"}, stream=False)
    assert chat == {"model": "m", "messages": [{"role": "system", "content": "Be brief"},
                                               {"role": "user", "content": "Hi"}],
                    "temperature": 0.2, "top_p": 0.9, "user": "u1", "safety_identifier": "s1",
                    "prompt_cache_key": "pk", "max_tokens": 64, "reasoning_effort": "low"}


def test_stream_asks_for_usage() -> None:
    chat = chat_request({"model": "m", "input": "Hi"}, stream=True)
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}


def test_items_become_messages_with_tool_calls_and_results() -> None:
    items: list[Any] = [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Rules"}]},
        {"role": "user", "content": [{"type": "input_text", "text": "Weather?"},
                                     {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"}]},
        {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
         "content": [{"type": "output_text", "text": "Let me look.", "annotations": []}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_a", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call", "id": "fc_2", "call_id": "call_b", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_a", "output": "Sunny"},
        {"type": "function_call_output", "call_id": "call_b", "output": [{"type": "input_text", "text": "Rain"}]},
        {"type": "file_search_call", "id": "fs_1", "status": "completed", "queries": []},
    ]
    messages = chat_request({"model": "m", "input": items}, stream=False)["messages"]
    assert messages[0] == {"role": "system", "content": "Rules"}
    assert messages[1]["content"] == [{"type": "text", "text": "Weather?"},
                                      {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}}]
    assert messages[2]["role"] == "assistant" and messages[2]["content"] == "Let me look."
    assert [c["id"] for c in messages[2]["tool_calls"]] == ["call_a", "call_b"]
    assert messages[3:] == [{"role": "tool", "tool_call_id": "call_a", "content": "Sunny"},
                            {"role": "tool", "tool_call_id": "call_b", "content": "Rain"}]
    assert len(messages) == 5  # the file_search_call item has nothing to say to a chat model


def test_function_call_without_a_preceding_assistant_message() -> None:
    items = [{"role": "user", "content": "x"},
             {"type": "function_call", "call_id": "c", "name": "f", "arguments": '{"a": 1}'}]
    last = chat_request({"model": "m", "input": items}, stream=False)["messages"][-1]
    assert last == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]}


def test_tools_choice_and_parallel() -> None:
    body = {"model": "m", "input": "x", "tools": [WEATHER, {"type": "file_search", "vector_store_ids": ["vs_1"]}],
            "tool_choice": {"type": "function", "name": "get_weather"}, "parallel_tool_calls": False}
    chat = chat_request(body, stream=False)
    assert chat["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather now", "parameters": WEATHER["parameters"], "strict": True}}]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert chat["parallel_tool_calls"] is False


def test_allowed_tools_narrow_the_list() -> None:
    other = {**WEATHER, "name": "get_time"}
    chat = chat_request({"model": "m", "input": "x", "tools": [WEATHER, other], "tool_choice": {
        "type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "get_time"}]}}, False)
    assert [t["function"]["name"] for t in chat["tools"]] == ["get_time"] and chat["tool_choice"] == "required"


def test_only_gateway_tools_leave_no_tools() -> None:
    chat = chat_request({"model": "m", "input": "x", "tools": [{"type": "file_search", "vector_store_ids": []}],
                         "tool_choice": "required"}, stream=False)
    assert "tools" not in chat and "tool_choice" not in chat


@pytest.mark.parametrize(("fmt", "expected"), [
    ({"type": "json_object"}, {"type": "json_object"}),
    ({"type": "json_schema", "name": "City", "schema": {"type": "object"}, "strict": True},
     {"type": "json_schema", "json_schema": {"name": "City", "schema": {"type": "object"}, "strict": True}}),
])
def test_text_format_is_response_format(fmt: dict[str, Any], expected: dict[str, Any]) -> None:
    assert chat_request({"model": "m", "input": "x", "text": {"format": fmt}}, False)["response_format"] == expected


def test_plain_text_format_sets_nothing() -> None:
    assert "response_format" not in chat_request({"model": "m", "input": "x", "text": {"format": {"type": "text"}}},
                                                 False)


def test_inline_file_is_given_as_text() -> None:
    data = "data:text/plain;base64," + base64.b64encode(b"The secret word is teal.").decode()
    item = {"role": "user", "content": [{"type": "input_text", "text": "What is the word?"},
                                        {"type": "input_file", "filename": "notes.txt", "file_data": data}]}
    content = chat_request({"model": "m", "input": [item]}, False)["messages"][0]["content"]
    assert content == 'What is the word?\n<file name="notes.txt">\nThe secret word is teal.\n</file>'


def test_what_chat_cannot_carry_is_a_400_naming_it() -> None:
    with pytest.raises(UnsupportedCapability) as tool:
        chat_request({"model": "m", "input": "x", "tools": [WEATHER, {"type": "web_search"}]}, False)
    assert tool.value.param == "tools[1].type"
    with pytest.raises(UnsupportedCapability) as item:
        chat_request({"model": "m", "input": [{"type": "computer_call_output", "call_id": "c"}]}, False)
    assert item.value.param == "input[0].type"
    with pytest.raises(InvalidRequest) as bad_file:
        chat_request({"model": "m", "input": [{"role": "user", "content": [
            {"type": "input_file", "filename": "a.txt", "file_data": "%%%"}]}]}, False)
    assert bad_file.value.param == "input[0].content[0].file_data"


def test_native_request_keeps_state_on_the_gateway() -> None:
    body = {"model": "m", "previous_response_id": "resp_1", "conversation": "conv_1", "store": True,
            "input": [{"id": "msg_1", "type": "message", "role": "user", "content": "x"}],
            "tools": [WEATHER, {"type": "file_search", "vector_store_ids": ["vs_1"]}], "tool_choice": "auto",
            "metadata": {"a": "b"}}
    sent = native_request(body)
    assert "previous_response_id" not in sent and "conversation" not in sent and sent["store"] is False
    assert sent["input"] == [{"type": "message", "role": "user", "content": "x"}]
    assert sent["tools"] == [WEATHER] and sent["tool_choice"] == "auto" and sent["metadata"] == {"a": "b"}
    back = patch({"id": "resp_9", "store": False, "previous_response_id": None, "tools": [WEATHER]}, body)
    assert back["previous_response_id"] == "resp_1" and back["store"] is True
    assert back["conversation"] == {"id": "conv_1"} and len(back["tools"]) == 2
