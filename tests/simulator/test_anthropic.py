import json
from typing import Any

import httpx

HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
TOOLS = [
    {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
]


def post(http: httpx.Client, **body: Any) -> httpx.Response:
    return http.post("/v1/messages", headers=HEADERS, json={"model": "claude-sim", "max_tokens": 100, **body})


def events(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in response.text.strip().split("\n\n"):
        name, data = block.split("\n")
        out.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


def test_text_message(http: httpx.Client) -> None:
    body = post(http, system="Be brief", messages=[{"role": "user", "content": "Hi there"}]).json()
    assert (body["type"], body["role"], body["stop_reason"]) == ("message", "assistant", "end_turn")
    assert body["content"][0]["text"].startswith("Simulated answer to: Hi there")
    assert body["usage"]["input_tokens"] == 4


def test_stop_sequence_and_max_tokens(http: httpx.Client) -> None:
    msgs = [{"role": "user", "content": "Hi"}]
    stopped = post(http, messages=msgs, stop_sequences=["answer"]).json()
    assert (stopped["stop_reason"], stopped["stop_sequence"]) == ("stop_sequence", "answer")
    short = post(http, messages=msgs, max_tokens=2).json()
    assert short["stop_reason"] == "max_tokens" and short["content"][0]["text"] == "Simulated answer"


def test_tool_use_then_tool_result(http: httpx.Client) -> None:
    msgs: list[Any] = [{"role": "user", "content": [{"type": "text", "text": 'get_weather for "Rome"'}]}]
    body = post(http, messages=msgs, tools=TOOLS).json()
    assert body["stop_reason"] == "tool_use"
    use = body["content"][0]
    assert (use["type"], use["name"], use["input"]) == ("tool_use", "get_weather", {"city": "Rome"})
    msgs += [
        {"role": "assistant", "content": body["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use["id"], "content": "Sunny"}]},
    ]
    answer = post(http, messages=msgs, tools=TOOLS).json()
    assert answer["content"] == [{"type": "text", "text": "The tool returned: Sunny"}]
    forced = post(
        http, messages=[{"role": "user", "content": "hi"}], tools=TOOLS, tool_choice={"type": "any"}
    ).json()
    assert forced["content"][0]["name"] == "get_weather"


def test_stream_events(http: httpx.Client) -> None:
    got = events(post(http, messages=[{"role": "user", "content": "Hi"}], stream=True))
    names = [name for name, _ in got]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    text = "".join(d["delta"]["text"] for n, d in got if n == "content_block_delta")
    assert text == post(http, messages=[{"role": "user", "content": "Hi"}]).json()["content"][0]["text"]
    assert got[-2][1]["delta"]["stop_reason"] == "end_turn"


def test_streamed_tool_input_reassembles(http: httpx.Client) -> None:
    got = events(
        post(http, messages=[{"role": "user", "content": 'get_weather "Bern"'}], tools=TOOLS, stream=True)
    )
    parts = [d["delta"]["partial_json"] for n, d in got if n == "content_block_delta"]
    assert len(parts) > 1 and json.loads("".join(parts)) == {"city": "Bern"}
    assert got[1][1]["content_block"]["type"] == "tool_use"


def test_errors_use_the_anthropic_envelope(http: httpx.Client) -> None:
    missing = http.post("/v1/messages", headers=HEADERS, json={"model": "c", "messages": []})
    assert missing.status_code == 400
    assert missing.json()["type"] == "error" and missing.json()["error"]["type"] == "invalid_request_error"
    overloaded = post(http, messages=[{"role": "user", "content": "x"}], sim={"status": 529})
    assert overloaded.status_code == 529 and overloaded.json()["error"]["type"] == "overloaded_error"
