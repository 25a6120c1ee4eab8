"""count_tokens: the gateway's documented estimate (4 characters a token, 3 a message, 1,600 an image)."""

from __future__ import annotations

from typing import Any

from gateway.http.messages.schema import MessagesInput
from gateway.http.messages.tokens import count_input_tokens
from gateway.http.parsing import validate


def count(**body: Any) -> int:
    return count_input_tokens(validate({"model": "m", **body}, MessagesInput))


def test_text_is_four_characters_a_token_rounded_up_plus_three_a_message() -> None:
    assert count(messages=[{"role": "user", "content": "12345678"}]) == 2 + 3
    assert count(messages=[{"role": "user", "content": "123456789"}]) == 3 + 3
    assert count(messages=[{"role": "user", "content": "1234"}], system="1234") == 2 + 3
    two = [{"role": "user", "content": "1234"}, {"role": "assistant", "content": [{"type": "text", "text": "1234"}]}]
    assert count(messages=two) == 2 + 6


def test_images_tools_and_tool_traffic_count() -> None:
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    assert count(messages=[{"role": "user", "content": [image]}]) == 1600 + 3
    use = {"type": "tool_use", "id": "t", "name": "abcd", "input": {"a": 1}}  # "abcd" + '{"a":1}': 11 chars
    result = {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "12345"}, image]}
    assert count(messages=[{"role": "assistant", "content": [use]}]) == 3 + 3
    assert count(messages=[{"role": "user", "content": [result]}]) == 2 + 1600 + 3
    tool = {"name": "f", "description": "abc", "input_schema": {}}  # 1 + 3 + 2 chars
    assert count(messages=[{"role": "user", "content": "1234"}], tools=[tool]) == 3 + 3


def test_thinking_is_not_counted_and_more_text_never_counts_less() -> None:
    thinking = {"type": "thinking", "thinking": "x" * 400, "signature": "s"}
    assert count(messages=[{"role": "assistant", "content": [thinking]}]) == 3
    counts = [count(messages=[{"role": "user", "content": "word " * n}]) for n in range(50)]
    assert counts == sorted(counts) and counts[-1] > counts[0]
