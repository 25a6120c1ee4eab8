"""Cheap up-front token estimates (chars/4 of the prompt + the completion allowance)."""

from __future__ import annotations

from typing import Any

from gateway.kernel.context import RequestContext


def text_chars(value: Any) -> int:
    """Characters of text in a prompt-like value (strings, message lists, content parts, Responses items)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(text_chars(v) for v in value)
    if isinstance(value, dict):
        return sum(text_chars(value.get(key)) for key in ("content", "text", "output", "arguments"))
    return 0


def estimate_tokens(ctx: RequestContext, default_completion: int) -> int:
    body = ctx.body
    prompt = [body.get("instructions") or "", body.get("input") or ""] if ctx.route == "responses" else (
        body.get("messages") or body.get("prompt") or body.get("input") or "")
    completion = body.get("max_completion_tokens") or body.get("max_tokens") or body.get("max_output_tokens")
    if ctx.route not in ("chat", "completions", "messages", "responses"):
        completion = 0
    elif not isinstance(completion, int):
        completion = default_completion
    return text_chars(prompt) // 4 + 1 + completion
