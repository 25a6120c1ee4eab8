"""Issue 9, "Done when": every routing decision and every route passes one front door.

One test per defect, each through a real gateway process with the real ``openai`` client against real
simulator processes. Policy is the shipped Rego in ``config/policies`` plus one data file written here,
which adds the team ``front-door`` with a ``models`` list (deep-merged into ``data.policy.teams``).

Models (public name → who may use it, for team ``front-door``):

- ``sim-chat``: allowed; ``sim-code``: forbidden by the team's list.
- ``auto-cheap`` (cheapest ``auto`` candidate): forbidden; ``auto-allowed`` (dearer): allowed.
- ``fb-solo`` → fallback ``[fb-forbidden]``; ``fb-primary`` → fallbacks ``[fb-forbidden, fb-allowed]``. Both
  primaries run on a simulator that fails every call with 503; ``fb-forbidden`` (forbidden) and
  ``fb-allowed`` (allowed) each have their own simulator, so the serving backend is visible.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory, SimFactory
from tests.integration.test_agent_loop import ADMIN, PYTHON, node_drivers, start_node, wait_for_tools
from tests.support.processes import ROOT, ServerProcess, unavailable

pytestmark = pytest.mark.integration

TEAM = "front-door"
FRONT_KEY = "sk-front-door-0123456789"
SCOPED_KEY = "sk-front-scoped-0123456789"
OPEN_KEY = "sk-front-open-0123456789"
ALLOWED = ("sim-chat", "auto", "auto-allowed", "fb-solo", "fb-primary", "fb-allowed")
FORBIDDEN = ("sim-code", "auto-cheap", "fb-forbidden")
ASK: Any = [{"role": "user", "content": "hello front door"}]
CRLF_MODEL = "sim-chat\r\nx-injected: 1"


# --- configuration helpers -----------------------------------------------------------------


def policy_paths(tmp: Path) -> list[str]:
    """The shipped policies and data, plus a data file giving team ``front-door`` a models list."""
    data = tmp / "front_door_data.json"
    data.write_text(json.dumps({"policy": {"teams": {TEAM: {"models": list(ALLOWED)}}}}))
    return [str(ROOT / "config" / "policies"), str(data)]


def model(name: str, backend: str, **extra: object) -> dict[str, object]:
    return {"name": name, "deployments": [{"backend": backend}], "auto": False, **extra}


def backend(name: str, sim: ServerProcess) -> dict[str, object]:
    return {"name": name, "type": "openai", "base_url": f"{sim.url}/v1"}


def front_key(**extra: object) -> dict[str, object]:
    return {"key": FRONT_KEY, "key_id": "front", "tenant": TEAM, **extra}


def client(gw: ServerProcess, key: str = FRONT_KEY, timeout: float = 30.0) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0, timeout=timeout)


def chat_requests(sim: ServerProcess) -> int:
    """How many chat completions ``sim`` has received."""
    data = httpx.get(f"{sim.url}/_sim/requests").json()["data"]
    return sum(1 for r in data if r["method"] == "POST" and r["path"].endswith("/chat/completions"))


# --- gateways (module scoped, started on first use) -------------------------------------------


@pytest.fixture(scope="module")
def sims(start_sim: SimFactory) -> dict[str, ServerProcess]:
    """A healthy shared simulator, one that fails every call with 503, and one per fallback target."""
    return {
        "shared": start_sim("--name", "front-shared"),
        "broken": start_sim("--name", "front-broken", "--error-rate", "1", "--error-status", "503"),
        "sim-b": start_sim("--name", "front-b"),
        "sim-c": start_sim("--name", "front-c"),
    }


@pytest.fixture(scope="module")
def policy_gateway(
    sims: dict[str, ServerProcess], start_gateway: GatewayFactory, tmp_path_factory: pytest.TempPathFactory
) -> ServerProcess:
    """``chain: [authn, authz]`` with every model above and the ``front-door`` key (no key grants)."""
    config: dict[str, object] = {
        "backends": [backend(name, sim) for name, sim in sims.items()],
        "models": [
            model("sim-chat", "shared"),
            model("sim-code", "shared"),
            model("auto-cheap", "shared", auto=True, cost={"input_per_mtok": 0.1, "output_per_mtok": 0.1}),
            model("auto-allowed", "shared", auto=True, cost={"input_per_mtok": 5.0, "output_per_mtok": 5.0}),
            model("fb-solo", "broken"),
            model("fb-primary", "broken"),
            model("fb-forbidden", "sim-b"),
            model("fb-allowed", "sim-c"),
        ],
        "chain": ["authn", "authz"],
        "auth": {"static_keys": [front_key()]},
        "policy": {"paths": policy_paths(tmp_path_factory.mktemp("policy"))},
        "routing": {
            "auto_model": "auto",
            "fallbacks": {"fb-solo": ["fb-forbidden"], "fb-primary": ["fb-forbidden", "fb-allowed"]},
        },
    }
    return start_gateway(config)


@pytest.fixture(scope="module")
def authn_gateway(sims: dict[str, ServerProcess], start_gateway: GatewayFactory) -> ServerProcess:
    """``chain: [authn]`` (no authz): a key scoped to ``sim-chat`` and an unscoped key."""
    config: dict[str, object] = {
        "backends": [backend("shared", sims["shared"])],
        "models": [model("sim-chat", "shared"), model("sim-code", "shared")],
        "chain": ["authn"],
        "auth": {"static_keys": [
            {"key": SCOPED_KEY, "key_id": "scoped", "tenant": "scoped-team", "models": ["sim-chat"]},
            {"key": OPEN_KEY, "key_id": "open", "tenant": "open-team"},
        ]},
    }
    return start_gateway(config)


@pytest.fixture(scope="module")
def limits_gateway(sims: dict[str, ServerProcess], start_gateway: GatewayFactory) -> ServerProcess:
    """``sim-chat`` (alias ``sim-chat-alias``) limited to 2 requests a minute, whatever name it is called by."""
    config: dict[str, object] = {
        "backends": [backend("shared", sims["shared"])],
        "models": [model("sim-chat", "shared", aliases=["sim-chat-alias"])],
        "chain": ["authn", "limits"],
        "auth": {"static_keys": [{"key": OPEN_KEY, "key_id": "open", "tenant": "open-team"}]},
        "limits": {"backend": "local", "models": {"sim-chat": {"rpm": 2}}},
    }
    return start_gateway(config)


@pytest.fixture(scope="module")
def vector_gateway(
    sims: dict[str, ServerProcess],
    start_gateway: GatewayFactory,
    postgres_dsn: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> ServerProcess:
    """``chain: [authn, authz]`` with vector stores on PostgreSQL."""
    config: dict[str, object] = {
        "backends": [backend("shared", sims["shared"])],
        "models": [model("sim-chat", "shared")],
        "chain": ["authn", "authz"],
        "auth": {"static_keys": [front_key()]},
        "policy": {"paths": policy_paths(tmp_path_factory.mktemp("policy"))},
        "postgres": {"dsn": postgres_dsn},
    }
    return start_gateway(config)


@pytest.fixture(scope="module")
def agent_gateway(
    sims: dict[str, ServerProcess], start_gateway: GatewayFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """The documented chain ``[authn, authz, limits, cache, rag, tools]`` with a bwrap node attached."""
    config: dict[str, object] = {
        "backends": [backend("shared", sims["shared"])],
        "models": [model("sim-chat", "shared")],
        "chain": ["authn", "authz", "limits", "cache", "rag", "tools"],
        "auth": {"static_keys": [front_key(roles=["agent"]), ADMIN]},
        "policy": {"paths": policy_paths(tmp_path_factory.mktemp("policy"))},
        "tools": {"enrollment": {"enabled": True}, "scheduler": {"node_ttl_s": 5}, "max_steps": 4,
                  "options": {"python": {"driver": "bwrap"}}},
    }
    gateway = start_gateway(config)
    node = start_node(gateway, "bwrap", "node-front-door")
    try:
        if "bwrap" not in node_drivers(node):
            unavailable("the bwrap driver")
        wait_for_tools(client(gateway, timeout=60))
        yield gateway
    finally:
        node.stop()


# --- the defects ------------------------------------------------------------------------------


def test_vector_store_search_for_a_tenant_with_a_models_list(vector_gateway: ServerProcess) -> None:
    """Search used to ask the policy with ``model: null``: always 403 for a team with a models list."""
    c = client(vector_gateway, timeout=60)
    store = c.vector_stores.create(name="front-door-docs").id
    uploaded = c.files.create(file=("zebras.txt", b"Zebras are African equines with striped coats."),
                              purpose="assistants")
    c.vector_stores.files.create(vector_store_id=store, file_id=uploaded.id)
    deadline = time.monotonic() + 60
    while c.vector_stores.files.retrieve(uploaded.id, vector_store_id=store).status == "in_progress":
        assert time.monotonic() < deadline, "the file was never ingested"
        time.sleep(0.05)
    results = c.vector_stores.search(store, query="What coat do zebras have?")
    assert results.data, "the tenant's own store answered no results"
    assert results.data[0].filename == "zebras.txt"


def test_forced_fallback_to_a_forbidden_model_is_refused(
    policy_gateway: ServerProcess, sims: dict[str, ServerProcess]
) -> None:
    """``fb-solo`` fails (503) and its only fallback is forbidden: an error, and B is never called."""
    c = client(policy_gateway)
    before = chat_requests(sims["sim-b"])
    outcome: Any
    try:
        raw = c.chat.completions.with_raw_response.create(model="fb-solo", messages=ASK)
        outcome = (raw.http_response.status_code, raw.headers.get("x-llmops-backend"), raw.parse().model)
    except openai.APIStatusError as exc:
        outcome = exc.status_code
    assert isinstance(outcome, int) and outcome >= 400, f"served by a forbidden fallback: {outcome}"
    assert chat_requests(sims["sim-b"]) == before, "the forbidden fallback's backend was called"


def test_denied_fallback_is_skipped_and_named_in_the_route_reason(
    policy_gateway: ServerProcess, sims: dict[str, ServerProcess]
) -> None:
    """``fb-primary`` fails (503); ``fb-forbidden`` is skipped; ``fb-allowed`` serves; the reason says so."""
    before = chat_requests(sims["sim-b"])
    raw = client(policy_gateway).chat.completions.with_raw_response.create(model="fb-primary", messages=ASK)
    completion = raw.parse()
    assert (raw.headers.get("x-llmops-backend"), completion.model) == ("sim-c", "fb-allowed")
    assert chat_requests(sims["sim-b"]) == before, "the forbidden fallback's backend was called"
    reason = raw.headers.get("x-llmops-route-reason", "")
    assert "fb-forbidden" in reason and "denied" in reason, f"x-llmops-route-reason: {reason!r}"


def test_auto_never_picks_a_model_the_policy_forbids(policy_gateway: ServerProcess) -> None:
    """``auto-cheap`` is the cheapest candidate but the team's policy forbids it."""
    c = client(policy_gateway)
    served: list[tuple[str, str]] = []
    for i in range(20):
        raw = c.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": f"hello number {i}"}])
        served.append((raw.parse().model, raw.headers.get("x-llmops-route-reason", "")))
    # the reason's first part names the model that served ("auto:general=X"); "denied=X" names skipped ones
    forbidden = [s for s in served if s[0] in FORBIDDEN or s[1].split(";")[0].split("=")[-1] in FORBIDDEN]
    assert not forbidden, f"auto served forbidden models: {forbidden[:3]} ({len(forbidden)}/20)"
    assert {m for m, _ in served} == {"auto-allowed"}
    assert all("denied=auto-cheap" in reason for _, reason in served)


def test_an_alias_cannot_escape_a_per_model_limit(limits_gateway: ServerProcess) -> None:
    """``limits.models.sim-chat.rpm: 2`` holds whether the model is named or aliased."""
    c = client(limits_gateway, OPEN_KEY)
    c.chat.completions.create(model="sim-chat", messages=ASK)
    c.chat.completions.create(model="sim-chat-alias", messages=ASK)
    with pytest.raises(openai.RateLimitError) as info:
        c.chat.completions.create(model="sim-chat-alias", messages=ASK)
    assert info.value.code == "rate_limit_exceeded"


def test_a_scoped_key_is_enforced_without_authz(authn_gateway: ServerProcess) -> None:
    """``chain: [authn]``: a key granted only ``sim-chat`` may not call ``sim-code``."""
    scoped = client(authn_gateway, SCOPED_KEY)
    assert scoped.chat.completions.create(model="sim-chat", messages=ASK).choices
    with pytest.raises((openai.PermissionDeniedError, openai.NotFoundError)) as info:
        scoped.chat.completions.create(model="sim-code", messages=ASK)
    assert info.value.status_code in (403, 404)
    if info.value.status_code == 404:
        assert info.value.code == "model_not_found"


def test_max_steps_is_honoured_in_the_documented_chain(agent_gateway: ServerProcess) -> None:
    """``llmops.max_steps: 1`` with a model that calls a tool at every step: exactly one model step."""
    raw = client(agent_gateway, timeout=120).chat.completions.with_raw_response.create(
        model="sim-chat",
        messages=[{"role": "user", "content": 'What is the SHA-256 of "front door max steps"?'}],
        tools=[PYTHON],
        tool_choice="required",
        extra_body={"llmops": {"max_steps": 1}},
    )
    body = json.loads(raw.http_response.text)
    steps = raw.headers.get("x-llmops-tool-steps")
    ran = body.get("llmops", {}).get("steps")
    assert (steps, ran) == ("1", 1), f"x-llmops-tool-steps={steps}, llmops.steps={ran}"


def test_unknown_model_is_404_with_authz_on(policy_gateway: ServerProcess) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client(policy_gateway).chat.completions.create(model="no-such-model", messages=ASK)
    assert info.value.code == "model_not_found"


def test_models_list_is_filtered_by_policy(policy_gateway: ServerProcess) -> None:
    listed = {m.id for m in client(policy_gateway).models.list()}
    assert not listed & set(FORBIDDEN), f"/v1/models lists forbidden models: {sorted(listed & set(FORBIDDEN))}"
    assert {"sim-chat", "auto-allowed", "fb-allowed"} <= listed


def test_crlf_model_name_is_404(policy_gateway: ServerProcess, authn_gateway: ServerProcess) -> None:
    for gw, key in ((policy_gateway, FRONT_KEY), (authn_gateway, OPEN_KEY)):
        with pytest.raises(openai.NotFoundError) as info:
            client(gw, key).chat.completions.create(model=CRLF_MODEL, messages=ASK)
        assert info.value.code == "model_not_found"
        assert "x-injected" not in info.value.response.headers
