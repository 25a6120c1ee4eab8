"""Direct tool calls (the MCP server's): the catalog filtered per caller by the policy, and one call run
as the agent loop runs it (a denied call never reaches a node)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from gateway.http.mcp.endpoint import McpEndpoint
from gateway.http.mcp.tools import McpTools
from gateway.kernel.config import settings_from_mapping
from gateway.kernel.context import Principal, RequestContext
from gateway.kernel.policy import Decision
from gateway.services.policy.gate import PolicyGate
from middleware.tools.authorize import ToolAuthorizer
from middleware.tools.calls import ToolCalls
from middleware.tools.catalog import ToolCatalog
from middleware.tools.direct import DirectTools, UnknownTool

CUSTOM = {"name": "search", "image": "img", "command": ["run"], "secrets": ["SEARCH_KEY"], "egress": ["api.example"]}


class Engine:
    """Denies ``python`` to role ``trial``; records every question."""

    def __init__(self) -> None:
        self.documents: list[Mapping[str, Any]] = []

    async def decide(self, action: str, document: Mapping[str, Any]) -> Decision:
        self.documents.append(document)
        trial = "trial" in document["subject"]["roles"]
        if trial and document["resource"]["tool"]["name"] == "python":
            return Decision(False, ('tool "python" is not allowed for roles ["trial"]',), decision_id="dec_7")
        return Decision(True, decision_id="dec_ok")


def direct(engine: Engine | None, ttl_s: float = 60.0, **tools: Any) -> DirectTools:
    settings = settings_from_mapping({"tools": {"custom": [CUSTOM], **tools}}).tools
    authorizer = ToolAuthorizer(PolicyGate(engine), settings.secrets, unguarded=settings.allow_without_policy)
    return DirectTools(ToolCatalog.from_settings(settings), authorizer, ToolCalls(authorizer, None), settings, ttl_s)


def ctx(key_id: str, *roles: str) -> RequestContext:
    return RequestContext("req_mcp_1", "chat", "", {}, {}, principal=Principal("research", key_id, roles=roles))


async def test_the_list_is_the_catalog_filtered_by_the_policy_per_caller_and_cached() -> None:
    engine = Engine()
    tools = direct(engine)
    agent = [e.name for e in await tools.visible(ctx("k-agent", "agent"))]
    trial = [e.name for e in await tools.visible(ctx("k-trial", "trial"))]
    assert agent == ["http_request", "python", "search", "shell"]
    assert trial == ["http_request", "search", "shell"]
    asked = len(engine.documents)
    assert asked == 8  # one tool_call question per tool and caller
    await tools.visible(ctx("k-trial", "trial"))
    assert len(engine.documents) == asked  # cached per key
    search = next(d for d in engine.documents if d["resource"]["tool"]["name"] == "search")
    assert search["action"] == "tool_call" and search["subject"]["key_id"] == "k-agent"
    assert search["resource"]["secrets"] == ["SEARCH_KEY"] and search["resource"]["egress"] == ["api.example"]
    assert search["resource"]["arguments"] == {} and search["context"]["request_id"] == "req_mcp_1"


async def test_without_a_cache_every_listing_asks_again() -> None:
    engine = Engine()
    tools = direct(engine, ttl_s=0)
    await tools.visible(ctx("k", "agent"))
    await tools.visible(ctx("k", "agent"))
    assert len(engine.documents) == 8


async def test_without_an_engine_only_the_unguarded_tools_are_listed() -> None:
    tools = direct(None, allow_without_policy=["python"])
    assert [e.name for e in await tools.visible(ctx("k"))] == ["python"]


async def test_a_denied_call_is_an_outcome_with_the_reason_and_never_placed() -> None:
    engine = Engine()
    outcome = await direct(engine).call(ctx("k-trial", "trial"), "python", {"code": "print(1)"})
    assert outcome.failed and outcome.trace.status == "denied" and outcome.trace.decision_id == "dec_7"
    assert 'tool "python" is not allowed for roles ["trial"]' in outcome.content
    assert outcome.trace.node is None
    (document,) = engine.documents
    assert document["resource"]["arguments"] == {"code": "print(1)"} and document["resource"]["workspace"] == ""


async def test_bad_arguments_are_a_failed_outcome() -> None:
    outcome = await direct(Engine()).call(ctx("k", "agent"), "python", {"code": 7})
    assert outcome.failed and outcome.trace.status == "error" and "'code' must be a string" in outcome.content


async def test_an_unknown_tool_is_refused() -> None:
    with pytest.raises(UnknownTool):
        await direct(Engine()).call(ctx("k", "agent"), "nope", {})


async def test_the_mcp_server_looks_schemas_up_without_listing() -> None:
    """The SDK's ``Mcp-Param-*`` check of a 2026 ``tools/call`` gets the schema here, not from a ``tools/list``
    (which costs a policy decision per tool) before every call."""
    engine = Engine()
    tools = direct(engine)
    endpoint = McpEndpoint(McpTools(tools), version="0", max_body_bytes=1 << 20, loopback_only=False)
    lookup = endpoint._manager.app.get_tool_input_schema
    assert lookup is not None
    schema = lookup("python")
    assert schema is not None and "code" in schema["properties"]
    assert lookup("nope") is None and engine.documents == []
