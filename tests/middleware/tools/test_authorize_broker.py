"""Brokered secrets: config shape, what the policy is asked, and what the node is granted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from gateway.kernel.config import ConfigError, Settings, settings_from_mapping
from gateway.kernel.context import RequestContext
from gateway.kernel.policy import Decision, Obligations
from gateway.services.policy.gate import PolicyGate
from middleware.tools.authorize import ToolAuthorizer, Verdict
from middleware.tools.catalog import ToolCatalog

GH = {"value": "${GH_TOKEN}", "header": "Authorization", "format": "Bearer {value}",
      "hosts": ["api.github.com", "evil.example"]}


def settings(**secrets: Any) -> Settings:
    custom = [{"name": "box", "image": "img", "command": ["run"], "secrets": ["GH", "PLAIN"]}]
    return settings_from_mapping({"tools": {"secrets": secrets, "custom": custom}}, {"GH_TOKEN": "ghp-secret-1"})


class Engine:
    def __init__(self, obligations: Obligations) -> None:
        self.decision = Decision(True, obligations=obligations)
        self.documents: list[Mapping[str, Any]] = []

    async def decide(self, action: str, document: Mapping[str, Any]) -> Decision:
        self.documents.append(document)
        return self.decision


async def authorize(engine: Engine, tool: str, args: dict[str, Any]) -> Verdict:
    tools = settings(GH=GH, PLAIN="plain-value").tools
    entry = ToolCatalog.from_settings(tools).get(tool)
    assert entry is not None
    ctx = RequestContext("req_1", "chat", "m", {}, {})
    return await ToolAuthorizer(PolicyGate(engine), tools.secrets).authorize(ctx, entry, args)


def test_a_secret_is_a_plain_value_or_a_spec_with_where_and_hosts() -> None:
    secrets = settings(GH=GH, PLAIN="plain-value").tools.secrets
    assert not secrets["PLAIN"].brokered and secrets["PLAIN"].get_secret_value() == "plain-value"
    assert secrets["GH"].brokered and secrets["GH"].get_secret_value() == "ghp-secret-1"
    assert "ghp-secret-1" not in repr(secrets)
    for bad in ({**GH, "query": "k"}, {**GH, "hosts": []}, {**GH, "format": "Bearer"}):
        with pytest.raises(ConfigError):
            settings(GH=bad)


async def test_http_request_gets_the_brokered_secret_for_its_host_narrowed_to_the_policy() -> None:
    engine = Engine(Obligations(allowed_secrets=("GH",), allowed_egress=("api.github.com", "uploads.github.com")))
    verdict = await authorize(engine, "http_request", {"url": "https://api.github.com/user"})
    assert engine.documents[0]["resource"]["secrets"] == ["GH"]
    grants = verdict.grants
    assert grants.egress == ("api.github.com", "uploads.github.com") and dict(grants.secrets) == {}
    secret = grants.brokered["GH"]
    assert (secret.value, secret.hosts) == ("ghp-secret-1", ("api.github.com",))
    assert (secret.header, secret.rendered()) == ("Authorization", "Bearer ghp-secret-1")


async def test_no_brokered_secret_for_other_hosts_or_without_the_policy() -> None:
    engine = Engine(Obligations(allowed_secrets=("GH",), allowed_egress=("api.github.com", "uploads.github.com")))
    verdict = await authorize(engine, "http_request", {"url": "https://uploads.github.com/x"})
    assert engine.documents[0]["resource"]["secrets"] == [] and dict(verdict.grants.brokered) == {}
    engine = Engine(Obligations(allowed_secrets=(), allowed_egress=("api.github.com",)))
    verdict = await authorize(engine, "http_request", {"url": "https://api.github.com/user"})
    assert dict(verdict.grants.brokered) == {}


async def test_a_brokered_secret_never_goes_into_a_sandbox() -> None:
    engine = Engine(Obligations(allowed_secrets=("GH", "PLAIN")))
    verdict = await authorize(engine, "box", {})
    assert dict(verdict.grants.secrets) == {"PLAIN": "plain-value"} and dict(verdict.grants.brokered) == {}


async def test_a_custom_tool_with_egress_gets_brokered_secrets_for_the_nodes_proxy_only() -> None:
    """Its HTTP goes through the node's egress proxy, which injects the credential; its sandbox gets
    only the plain secret, as a file."""
    custom = [{"name": "fetch", "image": "img", "command": ["run"], "secrets": ["GH", "PLAIN"],
               "egress": ["api.github.com"]}]
    tools = settings_from_mapping({"tools": {"secrets": {"GH": GH, "PLAIN": "plain-value"}, "custom": custom}},
                                  {"GH_TOKEN": "ghp-secret-1"}).tools
    entry = ToolCatalog.from_settings(tools).get("fetch")
    assert entry is not None
    engine = Engine(Obligations(allowed_secrets=("GH", "PLAIN"), allowed_egress=("api.github.com",)))
    ctx = RequestContext("req_1", "chat", "m", {}, {})
    grants = (await ToolAuthorizer(PolicyGate(engine), tools.secrets).authorize(ctx, entry, {})).grants
    assert grants.egress == ("api.github.com",)
    assert grants.brokered["GH"].hosts == ("api.github.com",) and grants.brokered["GH"].value == "ghp-secret-1"
    assert dict(grants.secrets) == {"PLAIN": "plain-value"} and grants.secret_files == ("PLAIN",)
