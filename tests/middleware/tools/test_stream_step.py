from __future__ import annotations

import json
from collections.abc import AsyncIterator

from middleware.tools.stream_step import Assembler, kind_of, sse_events


def chunk(delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
    return {"id": "c", "model": "m", "created": 1, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


async def split(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_events_survive_any_chunking_and_tool_arguments_reassemble() -> None:
    parts = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"tool_calls": [{"index": 0, "id": "t1", "type": "function", "function": {"name": "python"}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"code": "print('}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '1)"}'}}]}),
        chunk({}, "tool_calls"),
        {"id": "c", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}},
    ]
    wire = b"".join(b"data: " + json.dumps(p).encode() + b"\n\n" for p in parts) + b"data: [DONE]\n\n"
    for size in (1, 7, 64, len(wire)):
        assembled = Assembler()
        kinds = []
        async for _, doc in sse_events(split(wire, size)):
            kinds.append(kind_of(doc))
            if doc is not None:
                assembled.add(doc)
        done = assembled.completion()
        call = done["choices"][0]["message"]["tool_calls"][0]
        assert call["id"] == "t1" and call["function"]["name"] == "python"
        assert json.loads(call["function"]["arguments"]) == {"code": "print(1)"}
        assert done["choices"][0]["finish_reason"] == "tool_calls" and done["usage"]["total_tokens"] == 7
        assert kinds[:2] == [None, "tools"] and kinds[-1] is None


def test_text_marks_an_answer() -> None:
    assert kind_of(chunk({"content": "Hello"})) == "answer"
    assert kind_of(chunk({"role": "assistant", "content": ""})) is None
    assert kind_of(None) is None
