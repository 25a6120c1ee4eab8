import json
from typing import Any

import openai
import pytest

from tests.support.openapi import validate

USER: Any = [{"role": "user", "content": "Tell me about the tides"}]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city", "unit"],
        },
    },
}
PYTHON_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "python",
        "parameters": {"type": "object", "properties": {"code": {"type": "string"}}},
    },
}


def test_basic_completion_matches_the_openapi_schema(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="any-model", messages=USER)
    assert raw.headers["x-sim-name"] == "test"
    validate(json.loads(raw.text), "CreateChatCompletionResponse")
    done = raw.parse()
    assert done.system_fingerprint == "sim-test" and done.model == "any-model"
    content = done.choices[0].message.content or ""
    assert content.startswith("Simulated answer to: Tell me about the tides")
    assert done.usage is not None
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (5, len(content.split()))


def test_same_request_same_answer_and_seed_changes_it(client: openai.OpenAI) -> None:
    def ask(**kw: Any) -> str:
        return client.chat.completions.create(model="m", messages=USER, **kw).choices[0].message.content or ""

    assert ask() == ask()
    assert ask(seed=1) == ask(seed=1) != ask(seed=2)


def test_n_stop_and_max_tokens(client: openai.OpenAI) -> None:
    many = client.chat.completions.create(model="m", messages=USER, n=3)
    assert [c.index for c in many.choices] == [0, 1, 2]
    assert len({c.message.content for c in many.choices}) == 3
    stopped = client.chat.completions.create(model="m", messages=USER, stop=["about"])
    assert stopped.choices[0].message.content == "Simulated answer to: Tell me "
    assert stopped.choices[0].finish_reason == "stop"
    short = client.chat.completions.create(model="m", messages=USER, max_completion_tokens=3)
    assert short.choices[0].message.content == "Simulated answer to:"
    assert short.choices[0].finish_reason == "length"


def test_logprobs(client: openai.OpenAI) -> None:
    done = client.chat.completions.create(model="m", messages=USER, logprobs=True, top_logprobs=2)
    logprobs = done.choices[0].logprobs
    assert logprobs is not None and logprobs.content
    assert "".join(t.token for t in logprobs.content) == done.choices[0].message.content
    assert all(len(t.top_logprobs) == 2 and t.logprob <= 0 for t in logprobs.content)


def test_content_parts_are_counted(client: openai.OpenAI) -> None:
    parts: Any = [
        {"type": "text", "text": "Describe these"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
    ]
    done = client.chat.completions.create(model="m", messages=[{"role": "user", "content": parts}])
    assert "saw 2 image(s) and 1 audio part(s)" in (done.choices[0].message.content or "")


def test_json_object_and_json_schema(client: openai.OpenAI) -> None:
    obj = client.chat.completions.create(model="m", messages=USER, response_format={"type": "json_object"})
    assert "answer" in json.loads(obj.choices[0].message.content or "")
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["name", "age", "tags"],
        "additionalProperties": False,
    }
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}}
    done = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": 'Person called "Ada"'}], response_format=fmt
    )
    value = json.loads(done.choices[0].message.content or "")
    assert value["name"] == "Ada" and isinstance(value["age"], int) and isinstance(value["tags"], list)


def test_tool_call_when_the_prompt_names_the_tool(client: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": 'Call get_weather for "Oslo"'}]
    done = client.chat.completions.create(model="m", messages=messages, tools=[WEATHER_TOOL, PYTHON_TOOL])
    choice = done.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    calls = choice.message.tool_calls or []
    assert len(calls) == 1
    call: Any = calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo", "unit": "c"}
    validate(done.model_dump(exclude_unset=True), "CreateChatCompletionResponse")
    follow_up: Any = [
        *messages,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "  12C and sunny \n"},
    ]
    answer = client.chat.completions.create(model="m", messages=follow_up, tools=[WEATHER_TOOL])
    assert answer.choices[0].message.content == "The tool returned: 12C and sunny"
    assert answer.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("none", None),
        ("required", "get_weather"),
        ({"type": "function", "function": {"name": "python"}}, "python"),
    ],
)
def test_tool_choice(client: openai.OpenAI, choice: Any, expected: str | None) -> None:
    done = client.chat.completions.create(
        model="m", messages=USER, tools=[WEATHER_TOOL, PYTHON_TOOL], tool_choice=choice
    )
    calls: Any = done.choices[0].message.tool_calls
    assert (calls[0].function.name if calls else None) == expected


def test_python_sha256_agent_case(client: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": 'What is the sha256 of "abc"?'}]
    done = client.chat.completions.create(model="m", messages=messages, tools=[WEATHER_TOOL, PYTHON_TOOL])
    calls: Any = done.choices[0].message.tool_calls or []
    code = json.loads(calls[0].function.arguments)["code"]
    assert code == "import hashlib\nprint(hashlib.sha256(b'abc').hexdigest())"


async def test_stream_with_usage_matches_non_stream(aclient: openai.AsyncOpenAI) -> None:
    whole = await aclient.chat.completions.create(model="m", messages=USER)
    stream = await aclient.chat.completions.create(
        model="m", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    for chunk in chunks:
        validate(chunk.model_dump(exclude_unset=True), "CreateChatCompletionStreamResponse")
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert len(chunks) == len(text.split()) + 3  # role, one per token, finish, usage
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage


async def test_streamed_tool_call_arguments_reassemble(aclient: openai.AsyncOpenAI) -> None:
    messages: Any = [{"role": "user", "content": 'get_weather in "Lima"'}]
    stream = await aclient.chat.completions.create(
        model="m", messages=messages, tools=[WEATHER_TOOL], stream=True
    )
    chunks = [chunk async for chunk in stream]
    deltas = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].id and deltas[0].function and deltas[0].function.name == "get_weather"
    fragments = [d.function.arguments for d in deltas[1:] if d.function and d.function.arguments]
    assert len(fragments) > 1
    assert json.loads("".join(fragments)) == {"city": "Lima", "unit": "c"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_stream_helper_accumulates(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(model="m", messages=USER) as stream:
        final = stream.get_final_completion()
    assert (final.choices[0].message.content or "").startswith("Simulated answer to:")


def test_the_stop_that_ended_the_text_is_named_as_vllm_does(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="m", messages=USER, stop=["never", "about"])
    validate(json.loads(raw.text), "CreateChatCompletionResponse")
    assert json.loads(raw.text)["choices"][0]["stop_reason"] == "about"
    plain = client.chat.completions.with_raw_response.create(model="m", messages=USER, stop=["never"])
    assert "stop_reason" not in json.loads(plain.text)["choices"][0]  # no stop string ended it
    chunks = list(client.chat.completions.create(model="m", messages=USER, stop=["about"], stream=True))
    last = chunks[-1].choices[0]
    assert last.finish_reason == "stop" and (last.model_extra or {})["stop_reason"] == "about"
