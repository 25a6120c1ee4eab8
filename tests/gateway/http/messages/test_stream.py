"""Chat completion SSE → Anthropic Messages events, fed as bytes in any chunking."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.http.messages.stream import MessageEvents

HEAD = {"id": "chatcmpl-s1", "object": "chat.completion.chunk", "created": 1, "model": "up"}


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **choice: Any) -> bytes:
    doc = {**HEAD, "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish, **choice}]}
    return b"data: " + json.dumps(doc).encode() + b"\n\n"


def usage(prompt: int, completion: int) -> bytes:
    doc = {**HEAD, "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion}}
    return b"data: " + json.dumps(doc).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"
TEXT = chunk({"role": "assistant", "content": ""}) + chunk({"content": "Hello"}) + chunk({"content": " world"})


def events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for frame in raw.split(b"\n\n"):
        if not frame:
            continue
        name, data = frame.split(b"\n")
        assert name.startswith(b"event: ") and data.startswith(b"data: "), frame
        doc = json.loads(data[6:])
        assert doc["type"] == name[7:].decode()
        out.append((doc["type"], doc))
    return out


def translate(*parts: bytes, stops: tuple[str, ...] = ()) -> list[tuple[str, dict[str, Any]]]:
    ev = MessageEvents("sim-chat", stops, 7)
    return events(b"".join(ev.feed(p) for p in parts) + ev.end())


def test_a_text_answer_is_the_full_event_sequence() -> None:
    out = translate(TEXT, chunk(finish="stop"), usage(4, 2), DONE)
    assert [name for name, _ in out] == ["message_start", "ping", "content_block_start", "content_block_delta",
                                         "content_block_delta", "content_block_stop", "message_delta",
                                         "message_stop"]
    start = out[0][1]["message"]
    assert start["id"] == "msg_s1" and start["model"] == "sim-chat" and start["content"] == []
    assert start["usage"] == {"input_tokens": 7, "output_tokens": 0}  # the gateway's estimate, until the end
    assert out[2][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    assert [d["delta"]["text"] for n, d in out if n == "content_block_delta"] == ["Hello", " world"]
    assert out[6][1]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert out[6][1]["usage"] == {"output_tokens": 2, "input_tokens": 4}


def test_any_chunking_gives_the_same_events() -> None:
    whole = TEXT + chunk(finish="stop") + usage(4, 2) + DONE
    ev = MessageEvents("sim-chat", (), 7)
    byte_by_byte = b"".join(ev.feed(whole[i : i + 1]) for i in range(len(whole))) + ev.end()
    assert events(byte_by_byte) == translate(whole)


def test_tool_calls_become_tool_use_blocks_with_json_deltas() -> None:
    arguments = '{"city": "Paris"}'
    calls = [chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                    "function": {"name": "get_weather", "arguments": ""}}]})]
    calls += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments[i : i + 5]}}]})
              for i in range(0, len(arguments), 5)]
    calls.append(chunk({"tool_calls": [{"index": 1, "id": "call_2", "type": "function",
                                        "function": {"name": "clock", "arguments": "{}"}}]}))
    out = translate(chunk({"content": "Let me check."}), *calls, chunk(finish="tool_calls"), DONE)
    starts = [d for n, d in out if n == "content_block_start"]
    assert [s["content_block"]["type"] for s in starts] == ["text", "tool_use", "tool_use"]
    assert starts[1]["content_block"] == {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}
    json_parts = [d["delta"]["partial_json"] for n, d in out if n == "content_block_delta" and d["index"] == 1]
    assert "".join(json_parts) == arguments
    assert [d["index"] for n, d in out if n == "content_block_stop"] == [0, 1, 2]
    assert [n for n, _ in out].index("content_block_stop") < [n for n, _ in out].index("content_block_start", 3)
    assert out[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert out[-2][1]["usage"] == {"output_tokens": 0}  # no usage chunk: the estimate in message_start stands


def test_all_tool_calls_in_one_chunk() -> None:
    calls = [{"index": i, "id": f"c{i}", "type": "function", "function": {"name": f"f{i}", "arguments": "{}"}}
             for i in range(2)]
    out = translate(chunk({"tool_calls": calls}), chunk(finish="tool_calls"), DONE)
    assert [d["content_block"]["id"] for n, d in out if n == "content_block_start"] == ["c0", "c1"]


def test_a_named_stop_sequence() -> None:
    out = translate(TEXT, chunk(finish="stop", stop_reason="END"), DONE, stops=("END",))
    assert out[-2][1]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "END"}


def test_an_empty_answer_has_one_empty_text_block() -> None:
    out = translate(chunk({"role": "assistant", "content": ""}), chunk(finish="length"), DONE)
    assert [n for n, _ in out][2:5] == ["content_block_start", "content_block_stop", "message_delta"]
    assert out[-2][1]["delta"]["stop_reason"] == "max_tokens"


def test_an_error_chunk_ends_the_stream_with_an_error_event() -> None:
    broken = b'data: {"error": {"message": "Backend \'sim\' broke off the stream.", "type": "api_error"}}\n\n'
    out = translate(TEXT, broken, chunk({"content": "late"}), DONE)
    assert [n for n, _ in out][-2:] == ["content_block_delta", "error"]
    assert out[-1][1]["error"] == {"type": "api_error", "message": "Backend 'sim' broke off the stream."}


@pytest.mark.parametrize("code", ["server_shutting_down", "upstream_unavailable"])
def test_an_unavailable_backend_is_overloaded(code: str) -> None:
    broken = b'data: {"error": {"message": "gone", "code": "' + code.encode() + b'"}}\n\n'
    assert translate(TEXT, broken)[-1][1]["error"]["type"] == "overloaded_error"


def test_a_stream_cut_before_its_finish_is_an_error() -> None:
    out = translate(TEXT)
    assert out[-1][0] == "error" and "before its answer was complete" in out[-1][1]["error"]["message"]
    assert "message_stop" not in [n for n, _ in out]


def test_a_stream_without_done_still_closes_once_finished() -> None:
    out = translate(TEXT, chunk(finish="stop"))
    assert [n for n, _ in out][-2:] == ["message_delta", "message_stop"]


def test_nothing_follows_message_stop() -> None:
    ev = MessageEvents("m", (), 0)
    first = ev.feed(TEXT + chunk(finish="stop") + DONE)
    assert ev.finished and ev.feed(chunk({"content": "more"})) == b"" and ev.end() == b""
    assert ev.fail(502, "late") == b""
    assert events(first)[-1][0] == "message_stop"


def test_a_whole_completion_reads_as_one_chunk() -> None:
    """A cached or non-stream answer to a stream request is replayed through the same translation."""
    completion = {"id": "chatcmpl-w", "object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "All at once."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 3}}
    out = translate(b"data: " + json.dumps(completion).encode() + b"\n\n")
    assert [d["delta"]["text"] for n, d in out if n == "content_block_delta"] == ["All at once."]
    assert out[-1][0] == "message_stop" and out[-2][1]["usage"] == {"output_tokens": 3, "input_tokens": 3}
