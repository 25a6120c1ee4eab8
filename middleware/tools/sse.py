"""Stream a finished chat completion as OpenAI SSE chunks (the agent loop's final answer)."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from typing import Any

import orjson

_WORDS = re.compile(r"\S+\s*|\s+")
WORDS_PER_CHUNK = 4


def completion_chunks(completion: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """The chunk objects equivalent to ``completion`` (first choice), trace on the last choice chunk."""
    choice = completion["choices"][0]
    message = choice.get("message") or {}
    keys = ("id", "created", "model", "system_fingerprint")
    head: dict[str, Any] = {k: completion[k] for k in keys if k in completion}
    head["object"] = "chat.completion.chunk"

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": piece}) for piece in _pieces(message.get("content") or "")]
    calls = message.get("tool_calls") or []
    if calls:
        chunks.append(chunk({"tool_calls": [{"index": i, **c} for i, c in enumerate(calls)]}))
    last = chunk({}, choice.get("finish_reason") or "stop")
    if "llmops" in completion:
        last["llmops"] = completion["llmops"]
    chunks.append(last)
    if include_usage and completion.get("usage") is not None:
        chunks.append({**head, "choices": [], "usage": completion["usage"]})
    return chunks


async def sse_stream(chunks: list[dict[str, Any]]) -> AsyncGenerator[bytes, None]:
    for c in chunks:
        yield b"data: " + orjson.dumps(c) + b"\n\n"
    yield b"data: [DONE]\n\n"


def _pieces(text: str) -> list[str]:
    words = _WORDS.findall(text)
    return ["".join(words[i : i + WORDS_PER_CHUNK]) for i in range(0, len(words), WORDS_PER_CHUNK)]
