"""A chat completion → an Anthropic message, as a pure function."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.http.messages.reply import message_id, stop_reason, to_message


def completion(message: dict[str, Any], finish: str | None = "stop", **choice: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-abc", "object": "chat.completion", "model": "upstream-name",
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish, **choice}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}}


def test_a_text_answer() -> None:
    out = to_message(completion({"content": "Hello."}), "sim-chat", ())
    assert out == {"id": "msg_abc", "type": "message", "role": "assistant", "model": "sim-chat",
                   "content": [{"type": "text", "text": "Hello."}], "stop_reason": "end_turn", "stop_sequence": None,
                   "usage": {"input_tokens": 12, "output_tokens": 5}}


def test_tool_calls_become_tool_use_blocks() -> None:
    weather = {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    calls = [{"id": "call_1", "type": "function", "function": weather},
             {"id": "call_2", "type": "function", "function": {"name": "clock", "arguments": "not json"}},
             {"id": "call_3", "type": "function", "function": {"name": "echo", "arguments": "[1]"}}]
    out = to_message(completion({"content": None, "tool_calls": calls}, "tool_calls"), "m", ())
    assert out["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "clock", "input": {}},
        {"type": "tool_use", "id": "call_3", "name": "echo", "input": {"value": [1]}},
    ]
    assert out["stop_reason"] == "tool_use"


def test_text_before_tool_calls_is_kept_and_a_stop_with_calls_is_tool_use() -> None:
    calls = [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]
    out = to_message(completion({"content": "Checking.", "tool_calls": calls}, "stop"), "m", ())
    assert [b["type"] for b in out["content"]] == ["text", "tool_use"]
    assert out["content"][1]["id"].startswith("toolu_")  # a backend that gave no id: one is made
    assert out["stop_reason"] == "tool_use"


def test_an_empty_answer_still_has_a_text_block() -> None:
    out = to_message(completion({"content": None}, "length"), "m", ())
    assert out["content"] == [{"type": "text", "text": ""}] and out["stop_reason"] == "max_tokens"


@pytest.mark.parametrize(("finish", "matched", "expected"), [
    ("stop", None, ("end_turn", None)),
    ("stop", "END", ("stop_sequence", "END")),
    ("stop", "OTHER", ("end_turn", None)),  # not one the client asked for
    ("stop", 128001, ("end_turn", None)),  # vLLM names a stop token by its id
    ("length", None, ("max_tokens", None)),
    ("tool_calls", None, ("tool_use", None)),
    ("content_filter", None, ("refusal", None)),
    (None, None, ("end_turn", None)),
    ("something_new", None, ("end_turn", None)),
])
def test_stop_reasons(finish: Any, matched: Any, expected: tuple[str, str | None]) -> None:
    assert stop_reason(finish, matched, ["END"], False) == expected


def test_a_named_stop_sequence_reaches_the_message() -> None:
    out = to_message(completion({"content": "Hello "}, "stop", stop_reason="END"), "m", ["END"])
    assert (out["stop_reason"], out["stop_sequence"]) == ("stop_sequence", "END")


def test_ids_and_missing_usage() -> None:
    assert message_id("chatcmpl-xyz") == "msg_xyz"
    assert message_id("chatcmpl-msg_01abc") == "msg_01abc"  # an Anthropic backend's own id, as it was
    assert message_id(None).startswith("msg_") and message_id(None) != message_id(None)
    doc = completion({"content": "x"})
    del doc["usage"]
    assert to_message(doc, "m", ())["usage"] == {"input_tokens": 0, "output_tokens": 0}


def test_content_as_parts_is_read_as_text() -> None:
    out = to_message(completion({"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}), "m", ())
    assert out["content"] == [{"type": "text", "text": "ab"}]
