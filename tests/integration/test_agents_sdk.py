"""The OpenAI Agents SDK (``openai-agents``, its default Responses model) running agents through the
gateway: a function tool round trip and a handoff, over the simulator (translated to chat) and over an
anthropic-type backend, with responses stored in PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import openai
import pytest
from agents import Agent, OpenAIResponsesModel, RunConfig, Runner, function_tool, set_tracing_disabled
from agents.items import HandoffOutputItem, ToolCallItem, ToolCallOutputItem

from tests.conftest import GatewayFactory
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.integration
KEY = "sk-agents-sdk-0123456789"


@pytest.fixture(scope="module", autouse=True)
def no_tracing() -> Iterator[None]:
    set_tracing_disabled(True)  # the SDK would export its traces to OpenAI
    yield
    set_tracing_disabled(False)


@pytest.fixture(scope="module")
def gateway(sim: ServerProcess, start_gateway: GatewayFactory, postgres_dsn: str) -> ServerProcess:
    base = f"{sim.url}/v1"
    return start_gateway({
        "backends": [{"name": "chat", "type": "openai", "base_url": base},
                     {"name": "ant", "type": "anthropic", "base_url": base}],
        "models": [{"name": "sim-chat", "deployments": [{"backend": "chat"}]},
                   {"name": "claude-sim", "deployments": [{"backend": "ant", "model": "sim-chat"}]}],
        "chain": ["authn", "authz", "limits"],
        "auth": {"static_keys": [{"key": KEY, "key_id": "agents", "tenant": "agents"}]},
        "postgres": {"dsn": postgres_dsn},
    })


def model(gateway: ServerProcess, name: str) -> OpenAIResponsesModel:
    client = openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=KEY, max_retries=0, timeout=60)
    return OpenAIResponsesModel(model=name, openai_client=client)


@pytest.mark.parametrize("name", ["sim-chat", "claude-sim"])
def test_an_agent_calls_a_function_tool_and_answers(gateway: ServerProcess, name: str) -> None:
    asked: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        asked.append(city)
        return f"It is sunny in {city}."

    agent = Agent(name="forecaster", instructions="Answer with the weather.", tools=[get_weather],
                  model=model(gateway, name))
    result = asyncio.run(Runner.run(agent, 'Use get_weather for the city "Paris".', max_turns=4))
    kinds = [type(item) for item in result.new_items]
    assert ToolCallItem in kinds and ToolCallOutputItem in kinds, kinds
    assert asked, "the tool never ran"
    assert isinstance(result.final_output, str) and result.final_output.strip()
    assert result.last_response_id and result.last_response_id.startswith("resp_")


def test_a_triage_agent_hands_off(gateway: ServerProcess) -> None:
    specialist = Agent(name="weather_desk", instructions="You answer weather questions.",
                       handoff_description="Weather questions", model=model(gateway, "sim-chat"))
    triage = Agent(name="triage", instructions="Route the question.", handoffs=[specialist],
                   model=model(gateway, "sim-chat"))
    result = asyncio.run(Runner.run(triage, "transfer_to_weather_desk: is it raining in Oslo?", max_turns=4,
                                    run_config=RunConfig(tracing_disabled=True)))
    assert any(isinstance(item, HandoffOutputItem) for item in result.new_items), result.new_items
    assert result.last_agent.name == "weather_desk"
    assert isinstance(result.final_output, str) and result.final_output.strip()


@pytest.mark.parametrize("chaining", ["previous_response_id", "conversation"])
def test_server_side_state_carries_the_turns(gateway: ServerProcess, chaining: str) -> None:
    """The SDK sends only the new items and points at the stored state: each turn's history comes from
    the gateway's store (a chain of responses, or a conversation)."""
    seen: list[str] = []

    @function_tool
    def lookup(term: str) -> str:
        """Look a term up."""
        seen.append(term)
        return f"{term} is a tidal island."

    agent = Agent(name="librarian", instructions="Answer from lookups.", tools=[lookup],
                  model=model(gateway, "sim-chat"))
    prompt = 'Use lookup for "Mont-Saint-Michel".'
    sync = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=KEY, max_retries=0)
    if chaining == "conversation":
        conversation = sync.conversations.create().id
        result = asyncio.run(Runner.run(agent, prompt, max_turns=4, conversation_id=conversation))
        items = sync.conversations.items.list(conversation, order="asc").data
        assert [i.type for i in items][:3] == ["message", "function_call", "function_call_output"], items
    else:
        result = asyncio.run(Runner.run(agent, prompt, max_turns=4, auto_previous_response_id=True))
        assert result.last_response_id is not None
        last = sync.responses.retrieve(result.last_response_id)
        assert last.previous_response_id is not None, "the second turn did not point at the first"
        first = sync.responses.retrieve(last.previous_response_id)
        assert [item.type for item in first.output] == ["function_call"]
    assert seen == ["Mont-Saint-Michel"] and isinstance(result.final_output, str) and result.final_output.strip()
