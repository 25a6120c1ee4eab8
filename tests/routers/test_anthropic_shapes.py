"""OpenAI ⇄ Anthropic translation without a network."""

from __future__ import annotations

import json

from routers.backends.anthropic_shapes import to_chat_completion, to_messages_request
from routers.backends.anthropic_stream import StreamTranslator


def test_request_translation() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "Be brief"},
            {"role": "user", "content": [{"type": "text", "text": "look"},
                                         {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}]},
            {"role": "assistant", "tool_calls": [{"id": "t1", "type": "function",
                                                  "function": {"name": "f", "arguments": '{"a": 1}'}}]},
            {"role": "tool", "tool_call_id": "t1", "content": "done"},
            {"role": "user", "content": "and?"},
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": "required", "parallel_tool_calls": False, "stop": "END", "temperature": 0.5,
    }
    out = to_messages_request(body, "claude-x", 256)
    assert out["system"] == "Be brief" and out["max_tokens"] == 256 and out["model"] == "claude-x"
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    assert out["messages"][0]["content"][1]["source"] == {"type": "base64", "media_type": "image/png", "data": "AAA"}
    assert out["messages"][1]["content"][0] == {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}
    assert out["messages"][2]["content"][0]["type"] == "tool_result"
    assert out["messages"][2]["content"][1] == {"type": "text", "text": "and?"}
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert out["stop_sequences"] == ["END"] and out["temperature"] == 0.5


def test_response_translation() -> None:
    doc = {"id": "m1", "model": "c", "stop_reason": "tool_use", "usage": {"input_tokens": 3, "output_tokens": 4},
           "content": [{"type": "text", "text": "ok"}, {"type": "tool_use", "id": "t", "name": "f", "input": {"x": 1}}]}
    out = to_chat_completion(doc)
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] == "ok"
    assert json.loads(choice["message"]["tool_calls"][0]["function"]["arguments"]) == {"x": 1}
    assert out["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


def _event(kind: str, data: dict[str, object]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()


def _json_delta(part: str) -> dict[str, str]:
    return {"type": "input_json_delta", "partial_json": part}


def test_stream_tool_arguments_survive_any_chunking() -> None:
    args = '{"city": "Bern", "units": "metric"}'
    raw = b"".join([
        _event("message_start", {"message": {"id": "m", "model": "c", "usage": {"input_tokens": 2}}}),
        _event("content_block_start", {"index": 0, "content_block": {"type": "tool_use", "id": "t", "name": "w"}}),
        *(_event("content_block_delta", {"index": 0, "delta": _json_delta(args[i:i + 5])})
          for i in range(0, len(args), 5)),
        _event("content_block_stop", {"index": 0}),
        _event("message_delta", {"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
        _event("message_stop", {}),
    ])
    for size in (1, 7, 64, len(raw)):
        translator = StreamTranslator(include_usage=True)
        out = b"".join(translator.feed(raw[i:i + size]) for i in range(0, len(raw), size))
        events = [e[6:] for e in out.decode().split("\n\n") if e.startswith("data: ")]
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        calls = [t for c in chunks if c["choices"] for t in c["choices"][0]["delta"].get("tool_calls", [])]
        assert calls[0]["id"] == "t" and calls[0]["function"]["name"] == "w"
        assert "".join(t["function"]["arguments"] for t in calls) == args
        assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
        assert chunks[-1]["usage"] == {"prompt_tokens": 2, "completion_tokens": 9, "total_tokens": 11}


def test_the_stop_sequence_that_ended_the_text_is_named_on_the_choice() -> None:
    """As vLLM names it (``choices[0].stop_reason``), so a client translating back can say ``stop_sequence``."""
    doc = {"id": "m", "model": "c", "stop_reason": "stop_sequence", "stop_sequence": "END",
           "content": [{"type": "text", "text": "cut"}], "usage": {}}
    choice = to_chat_completion(doc)["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["stop_reason"] == "END"
    assert "stop_reason" not in to_chat_completion({**doc, "stop_reason": "end_turn"})["choices"][0]
    translator = StreamTranslator(include_usage=False)
    out = translator.feed(_event("message_start", {"message": {"id": "m", "model": "c", "usage": {}}})
                          + _event("message_delta", {"delta": {"stop_reason": "stop_sequence", "stop_sequence": "END"},
                                                     "usage": {"output_tokens": 1}}))
    last = json.loads(out.decode().split("\n\n")[-2][6:])
    assert last["choices"][0]["finish_reason"] == "stop" and last["choices"][0]["stop_reason"] == "END"
