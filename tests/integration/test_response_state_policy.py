"""The policy decides on stored responses and conversations by their ids: a rule added beside the
default policy seals one response id and keeps one team out of the Conversations API."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory
from tests.support.configs import sim_config
from tests.support.processes import ROOT, ServerProcess
from tests.support.services import new_database

pytestmark = pytest.mark.integration

KEY_A, KEY_B = "sk-sealed-team-a-0123456789", "sk-sealed-team-b-0123456789"
RULES = """package llmops.authz

deny contains "this response is sealed" if {
	input.action == "responses"
	"resp_sealed" in input.resource.responses
}

deny contains "no turn may follow a sealed response" if {
	input.action == "chat"
	some id in input.resource.responses
	startswith(id, "resp_")
	input.subject.tenant == "team-b"
}

deny contains "team-b keeps no conversations" if {
	input.action == "conversations"
	input.subject.tenant == "team-b"
}
"""


@pytest.fixture(scope="module")
def gateway(start_gateway: GatewayFactory, sim: ServerProcess, postgres_dsn: str,
            tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    policies = Path(tmp_path_factory.mktemp("policies")) / "policies"
    shutil.copytree(ROOT / "config" / "policies", policies)
    (policies / "sealed.rego").write_text(RULES)
    return start_gateway(sim_config(
        sim.url, "sim-chat", chain=["authn", "authz"], policy={"paths": [str(policies)], "reload_interval_s": 0},
        auth={"static_keys": [{"key": KEY_A, "key_id": "a", "tenant": "team-a"},
                              {"key": KEY_B, "key_id": "b", "tenant": "team-b"}]},
        postgres={"dsn": new_database(postgres_dsn, "sealed")}))


def test_a_sealed_response_id_is_denied_by_policy(gateway: ServerProcess) -> None:
    headers = {"authorization": f"Bearer {KEY_A}"}
    sealed = httpx.get(f"{gateway.url}/v1/responses/resp_sealed", headers=headers)
    assert sealed.status_code == 403 and "sealed" in sealed.json()["error"]["message"]
    other = httpx.get(f"{gateway.url}/v1/responses/resp_other", headers=headers)
    assert other.status_code == 404  # allowed, and simply not there


def test_a_team_kept_out_of_conversations(gateway: ServerProcess) -> None:
    mine = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=KEY_A, max_retries=0).conversations.create()
    theirs = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=KEY_B, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        theirs.conversations.create()
    with pytest.raises(openai.PermissionDeniedError):
        theirs.conversations.retrieve(mine.id)


def test_a_new_turn_is_decided_with_the_stored_state_it_reads(gateway: ServerProcess) -> None:
    """``previous_response_id`` is in the chat decision's resource: team-b may not build on stored turns."""
    a = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=KEY_A, max_retries=0)
    b = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=KEY_B, max_retries=0)
    first_a = a.responses.create(model="sim-chat", input="hello")
    assert a.responses.create(model="sim-chat", input="again", previous_response_id=first_a.id).status == "completed"
    first_b = b.responses.create(model="sim-chat", input="hello")
    with pytest.raises(openai.PermissionDeniedError) as denied:
        b.responses.create(model="sim-chat", input="again", previous_response_id=first_b.id)
    assert "sealed" in str(denied.value)
