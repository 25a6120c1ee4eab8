"""The real ``openai`` client through a real gateway process to a real simulator process."""

from __future__ import annotations

import io
import json
import struct
import wave

import openai
import pytest
from openai.types.chat import ChatCompletionMessageFunctionToolCall, ChatCompletionMessageParam

from tests.support.openapi import validate

pytestmark = pytest.mark.integration

CHAT = "sim-chat"
ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Tell me about gateways."}]


def test_chat_non_stream_matches_openai_schema(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model=CHAT, messages=ASK, temperature=0, seed=7)
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert raw.headers["x-request-id"].startswith("req_")
    validate(json.loads(raw.http_response.text), "CreateChatCompletionResponse")


def test_chat_is_deterministic_and_passes_n_stop_and_unknown_fields(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model=CHAT, messages=ASK, n=2, seed=1, extra_body={"sim": {}})
    second = client.chat.completions.create(model=CHAT, messages=ASK, n=2, seed=1)
    assert len(first.choices) == 2
    assert [c.message.content for c in first.choices] == [c.message.content for c in second.choices]


def test_stream_relays_chunks_and_final_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=CHAT, messages=ASK, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) > 3
    assert text == client.chat.completions.create(model=CHAT, messages=ASK).choices[0].message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    for chunk in chunks:
        validate(chunk.model_dump(exclude_unset=True), "CreateChatCompletionStreamResponse")


async def test_async_client_chat_and_stream(aclient: openai.AsyncOpenAI) -> None:
    completion = await aclient.chat.completions.create(model=CHAT, messages=ASK)
    assert completion.choices[0].finish_reason == "stop"
    stream = await aclient.chat.completions.create(model=CHAT, messages=ASK, stream=True)
    pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert "".join(pieces) == completion.choices[0].message.content


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_tool_call_round_trip(client: openai.OpenAI) -> None:
    messages: list[dict[str, object]] = [{"role": "user", "content": 'Use get_weather for "Paris".'}]
    first = client.chat.completions.create(model=CHAT, messages=messages, tools=[WEATHER_TOOL])  # type: ignore[arg-type, list-item]
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments)["city"] == "Paris"
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "18 C and sunny"},
    ]
    final = client.chat.completions.create(model=CHAT, messages=messages, tools=[WEATHER_TOOL])  # type: ignore[arg-type, list-item]
    assert "18 C and sunny" in (final.choices[0].message.content or "")


def test_streamed_tool_call_arguments_reassemble(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=CHAT, messages=[{"role": "user", "content": 'Call get_weather for "Oslo"'}], tools=[WEATHER_TOOL],  # type: ignore[list-item]
        stream=True,
    )
    assert isinstance(stream, openai.Stream)
    args = "".join(
        tc.function.arguments or ""
        for chunk in stream if chunk.choices
        for tc in chunk.choices[0].delta.tool_calls or [] if tc.function
    )
    assert json.loads(args) == {"city": "Oslo"}


def test_completions_legacy_endpoint(client: openai.OpenAI) -> None:
    completion = client.completions.create(model=CHAT, prompt="Once upon a time", max_tokens=5)
    assert completion.choices[0].text
    validate(completion.model_dump(exclude_unset=True), "CreateCompletionResponse")


def test_embeddings_float_and_base64(client: openai.OpenAI) -> None:
    raw = client.embeddings.with_raw_response.create(model="sim-embed", input=["a", "b"], encoding_format="float")
    validate(json.loads(raw.http_response.text), "CreateEmbeddingResponse")
    floats = raw.parse()
    assert len(floats.data) == 2 and len(floats.data[0].embedding) == 384
    # The SDK asks for base64 (float32) by default: the same vector, at float32 precision.
    again = client.embeddings.create(model="sim-embed", input="a")
    assert again.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)


def test_models_list_and_get(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"sim-chat", "sim-embed"} <= ids
    assert client.models.retrieve("sim-chat").id == "sim-chat"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_image_generation_returns_png(client: openai.OpenAI) -> None:
    import base64

    result = client.images.generate(model="sim-image", prompt="a lighthouse", n=1, response_format="b64_json")
    png = base64.b64decode(result.data[0].b64_json or "")  # type: ignore[index]
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    assert width > 0 and height > 0


def test_speech_returns_wav(client: openai.OpenAI) -> None:
    audio = client.audio.speech.create(model="sim-tts", voice="alloy", input="hello there", response_format="wav")
    data = audio.read()
    with wave.open(io.BytesIO(data)) as wav:
        assert wav.getnframes() > 0


def test_transcription_multipart(client: openai.OpenAI) -> None:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(b"\x00\x00" * 16000)
    result = client.audio.transcriptions.create(model="sim-stt", file=("hello.wav", buf.getvalue(), "audio/wav"))
    assert result.text
