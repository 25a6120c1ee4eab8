"""Needs detection from the endpoint and the body."""

from __future__ import annotations

from gateway.kernel.context import RequestContext
from routers.needs import AUDIO_INPUT, EMBEDDINGS, JSON_MODE, TEXT, TOOLS, VISION, looks_like_code, needs_of
from tests.routers.fakes import chat


def test_chat_parts_tools_and_json_mode() -> None:
    parts = [{"type": "text", "text": "x" * 400}, {"type": "image_url", "image_url": {"url": "u"}},
             {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]
    ctx = chat("m", parts, tools=[{"type": "function"}], response_format={"type": "json_schema"}, max_tokens=50)
    needs = needs_of(ctx, True)
    assert needs.mask == TEXT | VISION | AUDIO_INPUT | TOOLS | JSON_MODE
    assert needs.tokens == 150 and needs.text == "x" * 400


def test_endpoint_decides_the_modality() -> None:
    ctx = RequestContext("r", "embeddings", "m", {"input": ["abcd", "efgh"]}, {})
    assert needs_of(ctx, True).mask == EMBEDDINGS and needs_of(ctx, True).tokens == 2
    assert needs_of(chat("m", "plain question about the weather"), False).mask == TEXT


def test_code_rule() -> None:
    assert looks_like_code("```py\nprint(1)\n```")
    assert looks_like_code("Why does def f(x): fail?")
    assert looks_like_code("write a SQL query: SELECT a FROM t")
    assert not looks_like_code("What is the capital of France?")


def test_responses_tools_json_images_and_tokens() -> None:
    body = {"model": "m", "instructions": "x" * 40, "max_output_tokens": 100,
            "tools": [{"type": "function", "name": "f"}], "text": {"format": {"type": "json_object"}},
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "y" * 40},
                                                   {"type": "input_image", "image_url": "https://i/x.png"}]},
                      {"type": "function_call_output", "call_id": "c", "output": "done"}]}
    needs = needs_of(RequestContext("r", "responses", "m", body, {}), True)
    assert needs.mask == TEXT | TOOLS | JSON_MODE | VISION
    assert needs.tokens == 80 // 4 + 100 and needs.text == "y" * 40
    plain = needs_of(RequestContext("r", "responses", "m", {"model": "m", "input": "hello",
                                                             "tools": [{"type": "file_search"}]}, {}), True)
    assert plain.mask == TEXT and plain.text == "hello"
