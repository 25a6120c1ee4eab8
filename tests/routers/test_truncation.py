"""``truncation: "auto"``: which items go first, and what always stays."""

from __future__ import annotations

from typing import Any

from routers.truncation import truncate_input


def msg(role: str, chars: int, tag: str) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": tag + "x" * (chars - len(tag))}


def tags(body: dict[str, Any]) -> list[str]:
    return [str(i.get("content", i.get("type")))[:2] for i in body["input"]]


def test_oldest_items_go_first_and_system_and_last_user_stay() -> None:
    body = {"input": [msg("system", 400, "s0"), msg("user", 400, "u1"), msg("assistant", 400, "a1"),
                      msg("user", 400, "u2")]}
    assert truncate_input(body, 100)
    assert tags(body) == ["s0", "a1", "u2"]
    assert not truncate_input(body, 150)  # only a1 (100 tokens) may still go: not enough, so nothing goes
    assert tags(body) == ["s0", "a1", "u2"]
    assert truncate_input(body, 100)
    assert tags(body) == ["s0", "u2"]


def test_a_tool_call_goes_with_its_output() -> None:
    call = {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}
    out = {"type": "function_call_output", "call_id": "c1", "output": "y" * 800}
    body = {"input": [call, msg("assistant", 400, "a1"), out, msg("user", 40, "u2")]}
    assert truncate_input(body, 50)
    # the call went with its output (the estimate counts message text only, so they freed nothing), then a1
    assert tags(body) == ["u2"]
    kept = {"input": [msg("user", 400, "u1"), {**call}, {**out}, msg("user", 40, "u2")]}
    assert truncate_input(kept, 50)
    assert [i.get("type") for i in kept["input"]] == ["function_call", "function_call_output", "message"]


def test_nothing_changes_when_dropping_cannot_make_it_fit() -> None:
    body = {"input": [msg("system", 4000, "s0"), msg("user", 40, "u1")]}
    before = [dict(i) for i in body["input"]]
    assert not truncate_input(body, 10)
    assert body["input"] == before
    text = {"input": "just one user message" * 100}
    assert not truncate_input(text, 10)
    assert text["input"] == "just one user message" * 100
