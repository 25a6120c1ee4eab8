"""Through real gateway processes with the real openai client: 401, 403 with reasons, admin keys,
quota, and the remote-OPA path."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.conftest import GatewayFactory
from tests.gateway.services.policy.opa_server import running_opa
from tests.support.configs import sim_config
from tests.support.processes import ROOT, ServerProcess

pytestmark = pytest.mark.integration
ADMIN = "sk-admin-test-0123456789"
INTERN = "sk-intern-test-0123456789"
POOR = "sk-poor-test-0123456789"
ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]


def chain_config(sim_url: str, **extra: object) -> dict[str, object]:
    return sim_config(
        sim_url,
        "sim-chat",
        "sim-code",
        chain=["authn", "authz", "limits"],
        auth={
            "static_keys": [
                {"key": ADMIN, "key_id": "admin", "tenant": "ops", "roles": ["admin"]},
                {"key": INTERN, "key_id": "intern", "tenant": "interns"},
                {"key": POOR, "key_id": "poor", "tenant": "ops", "budget_usd": 0.000001},
            ]
        },
        limits={"prices": {"*": {"input_per_1m": 1.0, "output_per_1m": 1.0}}},
        **extra,
    )


@pytest.fixture(scope="module")
def gateway(sim: ServerProcess, start_gateway: GatewayFactory) -> ServerProcess:
    return start_gateway(chain_config(sim.url))


def client(gw: ServerProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)


def test_missing_and_unknown_keys_are_401(gateway: ServerProcess) -> None:
    r = httpx.post(f"{gateway.url}/v1/chat/completions", json={"model": "sim-chat", "messages": ASK})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client(gateway, "sk-nobody-0123456789").chat.completions.create(model="sim-chat", messages=ASK)


def test_policy_deny_is_403_with_reasons(gateway: ServerProcess) -> None:
    intern = client(gateway, INTERN)
    assert intern.chat.completions.create(model="sim-chat", messages=ASK).choices
    with pytest.raises(openai.PermissionDeniedError) as info:
        intern.chat.completions.create(model="sim-code", messages=ASK)
    assert 'team "interns" may not use model "sim-code"' in str(info.value)
    assert info.value.response.headers["x-policy-decision-id"].startswith("dec_")


def test_exhausted_budget_is_insufficient_quota(gateway: ServerProcess) -> None:
    poor = client(gateway, POOR)
    poor.chat.completions.create(model="sim-chat", messages=ASK)
    time.sleep(0.2)  # spend is recorded after the response
    with pytest.raises(openai.RateLimitError) as info:
        poor.chat.completions.create(model="sim-chat", messages=ASK)
    assert info.value.code == "insufficient_quota"


def test_admin_key_lifecycle(gateway: ServerProcess) -> None:
    admin = {"authorization": f"Bearer {ADMIN}"}
    assert httpx.get(f"{gateway.url}/admin/keys", headers={"authorization": f"Bearer {INTERN}"}).status_code == 403
    made = httpx.post(
        f"{gateway.url}/admin/keys", headers=admin, json={"tenant": "research", "models": ["sim-chat"], "rpm": 100}
    )
    assert made.status_code == 201
    key, key_id = made.json()["key"], made.json()["key_id"]
    assert client(gateway, key).chat.completions.create(model="sim-chat", messages=ASK).choices
    with pytest.raises(openai.PermissionDeniedError, match="not granted"):
        client(gateway, key).chat.completions.create(model="sim-code", messages=ASK)
    listed = httpx.get(f"{gateway.url}/admin/keys?tenant=research", headers=admin).json()["data"]
    assert [k["key_id"] for k in listed] == [key_id] and "key" not in listed[0] and "key_hash" not in listed[0]
    rotated = httpx.post(f"{gateway.url}/admin/keys/{key_id}/rotate", headers=admin).json()["key"]
    with pytest.raises(openai.AuthenticationError):
        client(gateway, key).chat.completions.create(model="sim-chat", messages=ASK)
    client(gateway, rotated).chat.completions.create(model="sim-chat", messages=ASK)
    assert httpx.delete(f"{gateway.url}/admin/keys/{key_id}", headers=admin).json()["status"] == "revoked"
    with pytest.raises(openai.AuthenticationError):
        client(gateway, rotated).chat.completions.create(model="sim-chat", messages=ASK)
    usage = httpx.get(f"{gateway.url}/admin/usage?key_id={key_id}", headers=admin).json()
    assert usage["keys"][key_id]["requests"] == 2


def test_keys_and_usage_cli(gateway: ServerProcess) -> None:
    base = [sys.executable, "-m", "gateway.cli"]
    conn = ["--url", gateway.url, "--admin-key", ADMIN]
    made = subprocess.run(
        [*base, "keys", *conn, "create", "--tenant", "cli-team", "--role", "dev"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert '"key": "sk-llmops-' in made.stdout
    listed = subprocess.run(
        [*base, "keys", *conn, "list", "--tenant", "cli-team"], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert "cli-team" in listed.stdout and "sk-llmops-" not in listed.stdout
    usage = subprocess.run([*base, "usage", *conn], capture_output=True, text=True, cwd=ROOT, check=True)
    assert '"tenants"' in usage.stdout


@pytest.fixture(scope="module")
def opa_url() -> Iterator[str]:
    with running_opa() as url:
        yield url


def test_remote_opa_through_the_gateway(sim: ServerProcess, start_gateway: GatewayFactory, opa_url: str) -> None:
    gw = start_gateway(chain_config(sim.url, policy={"engine": "opa", "opa_url": opa_url}))
    intern = client(gw, INTERN)
    assert intern.chat.completions.create(model="sim-chat", messages=ASK).choices
    with pytest.raises(openai.PermissionDeniedError, match="may not use model"):
        intern.chat.completions.create(model="sim-code", messages=ASK)


def test_models_list_needs_a_key_and_shows_only_granted_models(
    sim: ServerProcess, start_gateway: GatewayFactory
) -> None:
    config = chain_config(sim.url)
    config["auth"]["static_keys"].append(  # type: ignore[index]
        {"key": "sk-narrow-test-0123456789", "key_id": "narrow", "tenant": "ops", "models": ["sim-chat"]}
    )
    gw = start_gateway(config)
    assert httpx.get(f"{gw.url}/v1/models").status_code == 401
    narrow = client(gw, "sk-narrow-test-0123456789")
    assert {m.id for m in narrow.models.list()} == {"sim-chat", "auto"}  # auto: it chooses among sim-chat
    with pytest.raises(openai.NotFoundError):
        narrow.models.retrieve("sim-code")
    assert {"sim-chat", "sim-code"} <= {m.id for m in client(gw, ADMIN).models.list()}
