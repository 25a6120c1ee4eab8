"""Conversation input items become OpenAI's item resources, or a 400 naming the param."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.http.items import input_items
from gateway.kernel.errors import InvalidRequest
from tests.support.openapi import validate

GOOD: list[Any] = [
    {"role": "user", "content": "plain"},
    {"type": "message", "role": "assistant", "content": "an answer"},
    {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "be brief"}]},
    {"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "look"}, {"type": "input_image", "image_url": "https://x.example/a.png"},
        {"type": "input_file", "file_id": "file-abc"}]},
    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"},
                                                         {"type": "refusal", "refusal": "no"}]},
    {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}", "id": "fc_given"},
    {"type": "function_call_output", "call_id": "call_1", "output": "42"},
    {"type": "function_call_output", "call_id": "call_1", "output": [{"type": "input_text", "text": "42"}]},
]


def test_every_accepted_item_is_a_valid_conversation_item() -> None:
    items = input_items(GOOD)
    for item in items:
        validate(item, "ConversationItem")
        assert item["status"] == "completed"
    assert items[0]["content"] == [{"type": "input_text", "text": "plain"}]
    assert items[1]["content"] == [{"type": "output_text", "text": "an answer", "annotations": [], "logprobs": []}]
    assert items[0]["id"].startswith("msg_") and items[6]["id"].startswith("fco_")
    assert items[5]["id"] == "fc_given"
    assert len({item["id"] for item in items}) == len(items)


def test_unknown_fields_are_not_kept() -> None:
    [item] = input_items([{"role": "user", "content": "x", "secret": "y", "status": "in_progress"}])
    assert set(item) == {"id", "type", "role", "content", "status"} and item["status"] == "completed"


@pytest.mark.parametrize(("raw", "param"), [
    ({"role": "user"}, "items[0].content"),
    ({"role": "user", "content": []}, "items[0].content"),
    ({"role": "user", "content": [{"text": "no type"}]}, "items[0].content[0]"),
    ({"role": "user", "content": [{"type": "input_image", "detail": "huge", "image_url": "u"}]},
     "items[0].content[0].detail"),
    ({"role": "user", "content": [{"type": "input_image"}]}, "items[0].content[0]"),
    ({"role": "assistant", "content": [{"type": "input_image", "image_url": "u"}]}, "items[0].content[0].type"),
    ({"role": "user", "content": [{"type": "input_text", "text": 5}]}, "items[0].content[0].text"),
    ({"type": "function_call_output", "call_id": "c"}, "items[0].output"),
    ({"type": "function_call", "call_id": "c" * 65, "name": "f", "arguments": ""}, "items[0].call_id"),
    ({"type": "function_call", "call_id": "c", "name": "f", "arguments": "\x00"}, "items[0].arguments"),
    ("a string", "items[0]"),
])
def test_bad_items_name_their_param(raw: Any, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        input_items([raw])
    assert caught.value.param == param


def test_at_most_twenty_at_a_time() -> None:
    assert len(input_items([{"role": "user", "content": "x"}] * 20)) == 20
    with pytest.raises(InvalidRequest):
        input_items([{"role": "user", "content": "x"}] * 21)
    with pytest.raises(InvalidRequest):
        input_items([], required=True)
    assert input_items(None) == []
