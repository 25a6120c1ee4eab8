"""The up-front token estimate the limits stage draws before the answer is known."""

from __future__ import annotations

from typing import Any

from gateway.kernel.context import RequestContext
from middleware.limits.tokens import estimate_tokens


def estimate(route: Any, body: dict[str, Any]) -> int:
    return estimate_tokens(RequestContext("r", route, "m", body, {}), 256)


def test_chat_counts_messages_and_max_tokens() -> None:
    assert estimate("chat", {"messages": [{"role": "user", "content": "x" * 40}], "max_tokens": 10}) == 10 + 1 + 10


def test_responses_count_instructions_items_and_max_output_tokens() -> None:
    body = {"instructions": "i" * 8, "max_output_tokens": 20,
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "u" * 16}]},
                      {"type": "function_call", "call_id": "c", "name": "f", "arguments": "a" * 8},
                      {"type": "function_call_output", "call_id": "c", "output": "o" * 8}]}
    assert estimate("responses", body) == 40 // 4 + 1 + 20
    assert estimate("responses", {"input": "x" * 40}) == 10 + 1 + 256  # the default completion allowance
