"""``POST /v1/responses`` with the real ``openai`` SDK against a real gateway process and the simulator,
over the three paths: an openai-type backend (translated to chat), an anthropic-type backend (chat,
then Anthropic Messages) and an openai-type backend flagged ``responses: native`` (passed through to
the simulator's own ``/v1/responses``). The chain is on: keys, the shipped policy (plus one rule on
tools), limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pydantic
import pytest

from tests.conftest import GatewayFactory
from tests.support.openapi import validate
from tests.support.processes import ROOT, ServerProcess
from tests.support.responses_events import sse_events, types_of, validate_events

pytestmark = pytest.mark.integration

KEY, INTERN = "sk-responses-user-0123456789", "sk-responses-intern-0123456789"
MODELS = ("sim-chat", "claude-sim", "native-sim")
WEATHER: Any = {"type": "function", "name": "get_weather", "strict": True,
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                               "additionalProperties": False}}
LONG = "Tell me everything about the tides of the northern seas in winter and in summer and in spring please"
TOOL_RULE = """package llmops.authz

deny contains "the forbidden tool is not for anyone" if {
\tinput.action == "chat"
\t"forbidden_tool" in input.resource.tools
}
"""


@pytest.fixture(scope="module")
def gateway(sim: ServerProcess, start_gateway: GatewayFactory, postgres_dsn: str,
            tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    rules = Path(tmp_path_factory.mktemp("policy")) / "tools_rule.rego"
    rules.write_text(TOOL_RULE)
    base = f"{sim.url}/v1"
    config: dict[str, object] = {
        "backends": [{"name": "chat", "type": "openai", "base_url": base},
                     {"name": "ant", "type": "anthropic", "base_url": base},
                     {"name": "nat", "type": "openai", "base_url": base, "responses": "native"}],
        "models": [{"name": "sim-chat", "deployments": [{"backend": "chat"}]},
                   {"name": "claude-sim", "deployments": [{"backend": "ant"}]},
                   {"name": "native-sim", "deployments": [{"backend": "nat"}]},
                   {"name": "small-sim", "context_window": 100, "deployments": [{"backend": "chat"}]}],
        "chain": ["authn", "authz", "limits"],
        "auth": {"static_keys": [{"key": KEY, "key_id": "user", "tenant": "builders"},
                                 {"key": INTERN, "key_id": "intern", "tenant": "interns"}]},
        "policy": {"paths": [str(ROOT / "config" / "policies"), str(rules)], "reload_interval_s": 0},
        "limits": {"backend": "local"},
        "postgres": {"dsn": postgres_dsn},
    }
    return start_gateway(config)


@pytest.fixture(scope="module")
def client(gateway: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=KEY, max_retries=0)


def sim_requests(sim: ServerProcess, path: str) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = httpx.get(f"{sim.url}/_sim/requests").json()["data"]
    return [r for r in log if r["method"] == "POST" and r["path"] == path]


@pytest.mark.parametrize("model", MODELS)
def test_create_with_a_string_and_instructions(client: openai.OpenAI, model: str) -> None:
    raw = client.responses.with_raw_response.create(model=model, input="Hello there", instructions="Be brief",
                                                    metadata={"team": "a"})
    body = json.loads(raw.text)
    validate(body, "Response")
    response = raw.parse()
    assert response.status == "completed" and response.instructions == "Be brief"
    assert response.metadata == {"team": "a"}
    assert response.output_text.startswith("Simulated answer to: Hello there")
    assert response.usage is not None and response.usage.total_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_create_with_items(client: openai.OpenAI, model: str) -> None:
    response = client.responses.create(model=model, input=[
        {"role": "developer", "content": "Answer plainly."},
        {"role": "user", "content": [{"type": "input_text", "text": "First question"}]},
        {"role": "assistant", "content": "First answer"},
        {"role": "user", "content": "Second question"},
    ])
    assert response.output_text.startswith("Simulated answer to: Second question")


@pytest.mark.parametrize("model", MODELS)
def test_stream_events_in_order(client: openai.OpenAI, gateway: ServerProcess, model: str) -> None:
    with client.responses.stream(model=model, input="Stream to me") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert "response.output_text.delta" in kinds
    assert final.output_text.startswith("Simulated answer to: Stream to me")
    raw = httpx.post(f"{gateway.url}/v1/responses", headers={"authorization": f"Bearer {KEY}"},
                     json={"model": model, "input": "Stream to me", "stream": True})
    events = sse_events(raw.text)
    validate_events(events)
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas == events[-1]["response"]["output"][0]["content"][0]["text"]


@pytest.mark.parametrize("model", MODELS)
def test_function_tool_round_trip(client: openai.OpenAI, model: str) -> None:
    question: Any = {"role": "user", "content": 'What is the weather? Use get_weather for "Oslo".'}
    first = client.responses.create(model=model, input=[question], tools=[WEATHER])
    call = first.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Oslo"}
    second = client.responses.create(model=model, tools=[WEATHER], input=[
        question,
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "Snow, -3C"},
    ])
    assert second.output_text == "The tool returned: Snow, -3C"


@pytest.mark.parametrize("model", ("sim-chat", "native-sim"))
def test_function_call_stream_events(gateway: ServerProcess, model: str) -> None:
    raw = httpx.post(f"{gateway.url}/v1/responses", headers={"authorization": f"Bearer {KEY}"},
                     json={"model": model, "input": "call get_weather", "tools": [WEATHER], "stream": True})
    events = sse_events(raw.text)
    validate_events(events)
    assert "response.function_call_arguments.delta" in types_of(events)
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert done["name"] == "get_weather" and json.loads(done["arguments"]) == {"city": "sim-city"}


class City(pydantic.BaseModel):
    name: str
    population: int


@pytest.mark.parametrize("model", ("sim-chat", "native-sim"))
def test_structured_output_parses(client: openai.OpenAI, model: str) -> None:
    parsed = client.responses.parse(model=model, input='Describe "Lisbon"', text_format=City)
    city = parsed.output_parsed
    assert city is not None and city.name == "Lisbon" and isinstance(city.population, int)


@pytest.mark.parametrize("model", MODELS)
def test_max_output_tokens_is_incomplete(client: openai.OpenAI, model: str) -> None:
    response = client.responses.create(model=model, input=LONG, max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    assert len(response.output_text.split()) == 16


def test_native_backend_gets_the_request_without_gateway_state(client: openai.OpenAI, sim: ServerProcess) -> None:
    client.responses.create(model="native-sim", input="Hi native", store=True, metadata={"k": "v"})
    sent = sim_requests(sim, "/v1/responses")[-1]["body"]
    assert sent["store"] is False and sent["metadata"] == {"k": "v"} and sent["model"] == "native-sim"
    assert sent["input"] == [{"type": "message", "role": "user", "content": "Hi native"}]


def test_translated_backend_gets_chat(client: openai.OpenAI, sim: ServerProcess) -> None:
    client.responses.create(model="sim-chat", input="Hi chat", instructions="Sys", max_output_tokens=32,
                            temperature=0.5, user="u-1", prompt_cache_key="pk", reasoning={"effort": "low"})
    sent = sim_requests(sim, "/v1/chat/completions")[-1]["body"]
    assert sent["messages"] == [{"role": "system", "content": "Sys"}, {"role": "user", "content": "Hi chat"}]
    assert (sent["max_tokens"], sent["temperature"], sent["user"], sent["prompt_cache_key"],
            sent["reasoning_effort"]) == (32, 0.5, "u-1", "pk", "low")


@pytest.mark.parametrize(("body", "param"), [
    ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
    ({"input": "x", "max_output_tokens": 3}, "max_output_tokens"),
    ({"input": "x", "tools": [{"type": "function", "parameters": {}}]}, "tools[0].name"),
    ({"input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type"),
])
def test_bad_input_is_a_400_with_param(client: openai.OpenAI, body: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="sim-chat", **body)
    assert err.value.status_code == 400
    assert isinstance(err.value.body, dict) and err.value.body["param"] == param


def test_unknown_model_is_a_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        client.responses.create(model="no-such-model", input="x")
    assert isinstance(err.value.body, dict) and err.value.body["code"] == "model_not_found"


def test_an_unknown_previous_response_is_a_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        client.responses.create(model="sim-chat", input="x", previous_response_id="resp_123")
    assert isinstance(err.value.body, dict) and err.value.body["code"] == "previous_response_not_found"
    assert err.value.body["param"] == "previous_response_id"


def test_authentication_is_required(gateway: ServerProcess) -> None:
    missing = httpx.post(f"{gateway.url}/v1/responses", json={"model": "sim-chat", "input": "x"})
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_api_key"
    wrong = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-not-a-key-0123456789", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.responses.create(model="sim-chat", input="x")


def test_policy_sees_the_model_and_the_tools(gateway: ServerProcess, client: openai.OpenAI) -> None:
    intern = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=INTERN, max_retries=0)
    assert intern.responses.create(model="sim-chat", input="x").status == "completed"
    with pytest.raises(openai.PermissionDeniedError):
        intern.responses.create(model="claude-sim", input="x")  # team interns: sim-chat only
    forbidden: Any = {**WEATHER, "name": "forbidden_tool"}
    with pytest.raises(openai.PermissionDeniedError) as err:
        client.responses.create(model="sim-chat", input="x", tools=[WEATHER, forbidden])
    assert "forbidden tool" in str(err.value)


def test_access_log_and_metrics_name_the_route(client: openai.OpenAI, gateway: ServerProcess) -> None:
    client.responses.create(model="sim-chat", input="counted")
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert 'route="responses"' in metrics
    lines = [json.loads(line) for line in gateway.logs().splitlines() if line.startswith("{")]
    assert any(line.get("route") == "responses" and line.get("status") == 200 for line in lines)


def test_truncation_auto_drops_the_oldest_items_to_fit(client: openai.OpenAI, sim: ServerProcess) -> None:
    history: Any = [{"role": "developer", "content": "Be brief."},
                    {"role": "user", "content": "old question " * 40},
                    {"role": "assistant", "content": "old answer " * 40},
                    {"role": "user", "content": "What now?"}]
    with pytest.raises(openai.BadRequestError):  # "disabled", the default: over the window is a 400
        client.responses.create(model="small-sim", input=history)
    fitted = client.responses.create(model="small-sim", input=history, truncation="auto")
    assert fitted.status == "completed" and fitted.truncation == "auto"
    sent = sim_requests(sim, "/v1/chat/completions")[-1]["body"]["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [("system", "Be brief."), ("user", "What now?")]
    with pytest.raises(openai.BadRequestError):  # even the kept items do not fit: still the router's 400
        client.responses.create(model="small-sim", input="x" * 800, truncation="auto")



def test_logprobs_asked_for_by_include_reach_the_output_text(client: openai.OpenAI, gateway: ServerProcess) -> None:
    answer = client.responses.create(model="sim-chat", input="Weigh every word", top_logprobs=2,
                                     include=["message.output_text.logprobs"])
    part: Any = answer.output[0].content[0]  # type: ignore[union-attr,index]
    assert part.type == "output_text" and part.logprobs
    assert "".join(lp.token for lp in part.logprobs) == part.text
    assert all(len(lp.top_logprobs) == 2 for lp in part.logprobs)
    plain = client.responses.create(model="sim-chat", input="Weigh every word")
    plain_part: Any = plain.output[0].content[0]  # type: ignore[union-attr,index]
    assert plain_part.type == "output_text" and plain_part.logprobs == []
    raw = httpx.post(f"{gateway.url}/v1/responses", headers={"authorization": f"Bearer {KEY}"},
                     json={"model": "sim-chat", "input": "Weigh every word", "stream": True,
                           "include": ["message.output_text.logprobs"]})
    events = sse_events(raw.text)
    validate_events(events)
    streamed = [lp for e in events if e["type"] == "response.output_text.delta" for lp in e["logprobs"]]
    final = events[-1]["response"]["output"][0]["content"][0]
    assert streamed and [lp["token"] for lp in streamed] == [lp["token"] for lp in final["logprobs"]]


def test_a_reasoning_models_thinking_is_a_reasoning_item(client: openai.OpenAI, gateway: ServerProcess) -> None:
    answer = client.responses.create(model="sim-chat", input="Think first", reasoning={"effort": "low"})
    assert [item.type for item in answer.output] == ["reasoning", "message"]
    thought: Any = answer.output[0]
    assert thought.type == "reasoning" and thought.content is not None
    assert thought.content[0].text == "Thinking (low) about: Think first"
    raw = httpx.post(f"{gateway.url}/v1/responses", headers={"authorization": f"Bearer {KEY}"},
                     json={"model": "sim-chat", "input": "Think first", "stream": True, "reasoning": {"effort": "low"}})
    events = sse_events(raw.text)
    validate_events(events)
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.reasoning_text.delta")
    assert deltas == "Thinking (low) about: Think first"
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == deltas
    follow = client.responses.create(model="sim-chat", input="And now?", previous_response_id=answer.id)
    assert follow.status == "completed"  # the reasoning item in the history is not sent back to a chat backend
