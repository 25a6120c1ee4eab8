"""The simulator's ``POST /v1/responses``: bodies and events as OpenAI publishes them, and the SDK reads them."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pydantic

from tests.support.openapi import validate
from tests.support.responses_events import sse_events, types_of, validate_events

WEATHER: Any = {"type": "function", "name": "get_weather", "strict": True,
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
LONG = "Tell me everything about the tides of the northern seas in winter and in summer and in spring please"


def test_text_response_matches_the_schema(http: httpx.Client) -> None:
    body = http.post("/v1/responses", json={"model": "m", "input": "Hi there", "instructions": "Be brief",
                                            "metadata": {"k": "v"}}).json()
    validate(body, "Response")
    assert (body["status"], body["instructions"], body["metadata"]) == ("completed", "Be brief", {"k": "v"})
    text = body["output"][0]["content"][0]["text"]
    assert text.startswith("Simulated answer to: Hi there")
    assert body["usage"]["input_tokens"] == 4 and body["usage"]["output_tokens"] == len(text.split())


def test_input_items_and_function_call_round_trip(client: openai.OpenAI) -> None:
    first = client.responses.create(model="m", input=[{"role": "user", "content": 'get_weather for "Rome"'}],
                                    tools=[WEATHER])
    call = first.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Rome"}
    second = client.responses.create(model="m", tools=[WEATHER], input=[
        {"role": "user", "content": 'get_weather for "Rome"'},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 24C"},
    ])
    assert second.output_text == "The tool returned: Sunny, 24C"


def test_max_output_tokens_makes_it_incomplete(http: httpx.Client) -> None:
    body = http.post("/v1/responses", json={"model": "m", "input": LONG, "max_output_tokens": 16}).json()
    validate(body, "Response")
    assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert len(body["output"][0]["content"][0]["text"].split()) == 16


def test_stream_event_sequence(http: httpx.Client) -> None:
    resp = http.post("/v1/responses", json={"model": "m", "input": "Hi", "stream": True})
    events = sse_events(resp.text)
    validate_events(events)
    kinds = types_of(events)
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas == events[-1]["response"]["output"][0]["content"][0]["text"]


def test_stream_function_call_events(http: httpx.Client) -> None:
    resp = http.post("/v1/responses", json={"model": "m", "input": "call get_weather", "tools": [WEATHER],
                                            "stream": True})
    events = sse_events(resp.text)
    validate_events(events)
    args = "".join(e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta")
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert args == done["arguments"] and done["name"] == "get_weather"


class City(pydantic.BaseModel):
    name: str
    population: int


def test_structured_output_parses(client: openai.OpenAI) -> None:
    parsed = client.responses.parse(model="m", input='Describe "Oslo"', text_format=City)
    city = parsed.output_parsed
    assert city is not None and city.name == "Oslo" and isinstance(city.population, int)


def test_bad_input_is_a_400_naming_the_param(http: httpx.Client) -> None:
    resp = http.post("/v1/responses", json={"model": "m", "input": [{"type": "message", "role": "robot",
                                                                     "content": "x"}]})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "input[0].role"
