"""Done-when for issue 10, per-node identity: a real gateway, real ``llmops node`` processes, real TLS on loopback.

Two nodes enroll with single-use join tokens: ``node-secure`` (its token grants ``tier=secure``) and
``node-plain``. ``API_KEY`` may only be sent to ``tier=secure`` nodes (``tools.secret_node_labels``), and
only the custom WASI tool ``keyed_echo`` is granted it. Then: a replayed job, a stolen node id, a node
without the label for a secret and a revoked node each get nothing, while the good nodes run jobs; and a
node that accepts connections but never answers costs a re-placement, not the 15 s deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from executors.errors import AuthError
from executors.node.client import NodeClient, NodePin
from executors.node.identity import ensure_tls, state_dir
from executors.signing import CONTROL_PLANE, load_key, load_or_create_key, load_public, public_text, sign
from executors.spec import Job, job_to_dict
from tests.conftest import GatewayFactory
from tests.integration.test_agent_loop import (
    ADMIN,
    ADMIN_KEY,
    DIGEST,
    PYTHON,
    QUESTION,
    admin,
    join_token,
    node_drivers,
)
from tests.support.configs import sim_config
from tests.support.processes import ROOT, ServerProcess, python_module, unavailable

pytestmark = pytest.mark.integration

SECRET_VALUE = "sk-secure-only-4f1d2c9e"
KEYED: Any = {"type": "llmops_tool", "name": "keyed_echo"}
HEARTBEAT, ENROLL = "/internal/nodes/heartbeat", "/internal/nodes/enroll"


@dataclass
class Plane:
    gateway: ServerProcess
    cp_state: Path
    nodes: dict[str, ServerProcess]
    states: dict[str, Path]


def gateway_config(sim_url: str, cp_state: Path, policy_data: Path) -> dict[str, Any]:
    keys = [{"key": "sk-agent", "key_id": "agent", "tenant": "research", "roles": ["agent"]}, ADMIN]
    tools = {
        "enrollment": {"enabled": True, "state_dir": str(cp_state)},
        "secrets": {"API_KEY": SECRET_VALUE},
        "secret_node_labels": {"API_KEY": {"tier": "secure"}},
        "custom": [{"name": "keyed_echo", "description": "Echo, with an API key", "module": "echo",
                    "secrets": ["API_KEY"], "idempotent": True}],
        "scheduler": {"node_ttl_s": 5},
    }
    policy = {"paths": [str(ROOT / "config" / "policies"), str(policy_data)], "reload_interval_s": 0}
    return sim_config(sim_url, "sim-chat", chain=["authn", "tools"], auth={"static_keys": keys}, tools=tools,
                      policy=policy)


def node_argv(gateway: ServerProcess, node_id: str, state: Path) -> list[str]:
    return python_module("gateway.cli", "node", "--port", "0", "--control-plane", gateway.url, "--state-dir",
                         str(state), "--drivers", "bwrap,wasm", "--node-id", node_id, "--heartbeat-seconds", "0.5")


def cli(gateway: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """``llmops node ...`` admin commands; the admin key travels in the environment, not in argv."""
    return subprocess.run(python_module("gateway.cli", "node", *args, "--control-plane", gateway.url),
                          capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, "LLMOPS_ADMIN_KEY": ADMIN_KEY})


def listed(plane: Plane) -> dict[str, dict[str, Any]]:
    return {n["node_id"]: n for n in admin(plane.gateway, "GET", "/admin/nodes")["data"]}


def wait_live(plane: Plane, *node_ids: str) -> None:
    deadline = time.monotonic() + 30
    while not all(listed(plane).get(n, {}).get("live") for n in node_ids):
        assert time.monotonic() < deadline, listed(plane)
        time.sleep(0.2)


@pytest.fixture(scope="module")
def plane(
    sim: ServerProcess, start_gateway: GatewayFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Plane]:
    tmp = tmp_path_factory.mktemp("identity")
    data = tmp / "keyed_echo.json"
    data.write_text(json.dumps({"policy": {"tools": {"keyed_echo": {"egress": [], "secrets": ["API_KEY"]}}}}))
    gateway = start_gateway(gateway_config(sim.url, tmp / "cp", data))
    made = cli(gateway, "token", "--node-id", "node-secure", "--labels", "tier=secure")
    assert made.returncode == 0, made.stderr
    states = {"node-secure": tmp / "secure" / "state", "node-plain": tmp / "plain" / "state"}
    tokens = {"node-secure": made.stdout.strip(), "node-plain": join_token(gateway, "node-plain", {})}
    nodes = {n: ServerProcess(node_argv(gateway, n, states[n]), env={"LLMOPS_JOIN_TOKEN": tokens[n]})
             for n in states}
    try:
        for node in nodes.values():
            node.start(timeout_s=90)
        if not all({"bwrap", "wasm"} <= node_drivers(node) for node in nodes.values()):
            unavailable("the bwrap and wasm drivers")
        p = Plane(gateway, tmp / "cp", nodes, states)
        wait_live(p, *states)
        yield p
    finally:
        for node in nodes.values():
            node.stop()


def ask(plane: Plane, content: str, tools: list[Any]) -> Any:
    client = openai.OpenAI(base_url=f"{plane.gateway.url}/v1", api_key="sk-agent", max_retries=0, timeout=60)
    return client.chat.completions.with_raw_response.create(
        model="sim-chat", messages=[{"role": "user", "content": content}], tools=tools)


def first_call(raw: Any) -> dict[str, Any]:
    call: dict[str, Any] = json.loads(raw.http_response.text)["llmops"]["trace"][0]["calls"][0]
    return call


def signed_post(plane: Plane, path: str, payload: dict[str, Any], key: Ed25519PrivateKey,
                signer: str) -> httpx.Response:
    body = json.dumps(payload).encode()
    headers = sign(key, "POST", path, body, signer=signer, audience=CONTROL_PLANE)
    return httpx.post(plane.gateway.url + path, content=body, headers={"content-type": "application/json", **headers})


def beat(node_id: str, url: str, interval_s: float = 0.5) -> dict[str, Any]:
    return {"node_id": node_id, "url": url, "labels": {"runtimes": "python,wasm"}, "slots": 2, "free_slots": 2,
            "drivers": {"bwrap": {"available": True, "runtimes": ["python", "shell"]},
                        "wasm": {"available": True, "runtimes": ["python", "wasm"]}},
            "datasets": [], "interval_s": interval_s}


def test_the_good_nodes_run_jobs(plane: Plane) -> None:
    raw = ask(plane, QUESTION, [PYTHON])
    assert DIGEST in (raw.parse().choices[0].message.content or "")
    call = first_call(raw)
    assert call["status"] == "ok" and call["node"] in plane.nodes


def test_a_secret_goes_only_to_the_node_labelled_for_it(plane: Plane) -> None:
    for _ in range(3):
        raw = ask(plane, "Please run keyed_echo.", [KEYED])
        call = first_call(raw)
        assert call["name"] == "keyed_echo" and call["status"] == "ok", call
        assert call["node"] == "node-secure"  # node-plain runs wasm too, but its token granted no tier=secure
        assert SECRET_VALUE not in raw.http_response.text


def test_a_stolen_node_id_gets_nothing(plane: Plane) -> None:
    thief = Ed25519PrivateKey.generate()
    token = join_token(plane.gateway, None, {"tier": "secure"})  # even with a valid token of its own
    enroll = {"token": token, "node_id": "node-secure", "public_key": public_text(thief), "cert_sha256": "ab" * 32}
    taken = signed_post(plane, ENROLL, enroll, thief, "node-secure")
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "node_id_taken"
    for node_id in ("node-secure", "node-plain"):
        stolen = signed_post(plane, HEARTBEAT, beat(node_id, "https://127.0.0.1:9"), thief, node_id)
        assert stolen.status_code == 401 and stolen.json()["error"]["code"] == "node_unauthorized"
    now = listed(plane)
    assert now["node-secure"]["url"] == plane.nodes["node-secure"].url
    assert now["node-secure"]["public_key"] == public_text(load_key(plane.states["node-secure"] / "node.key"))
    assert first_call(ask(plane, "Please run keyed_echo.", [KEYED]))["node"] == "node-secure"


def pin(plane: Plane, node_id: str) -> NodePin:
    entry = listed(plane)[node_id]
    return NodePin(node_id, load_public(entry["public_key"]), bytes.fromhex(entry["cert_sha256"]))


class Spy(ThreadingHTTPServer):
    """An enrolled node run by an attacker, over real TLS: keeps every job it is sent and answers 503."""

    def __init__(self, state: Path) -> None:
        self.captured: list[tuple[dict[str, str], bytes]] = []
        self.key = load_or_create_key(state_dir(state) / "node.key")
        self.cert_sha256 = ensure_tls(state, "a-spy")
        super().__init__(("127.0.0.1", 0), _SpyHandler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(state / "tls.crt", state / "tls.key")
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server_address[1]}"


class _SpyHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        assert isinstance(self.server, Spy)
        self.server.captured.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(503)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_job_captured_on_its_way_to_one_node_gets_nothing_elsewhere(plane: Plane, tmp_path: Path) -> None:
    spy = Spy(tmp_path / "spy")
    threading.Thread(target=spy.serve_forever, daemon=True).start()
    try:
        token = join_token(plane.gateway, "a-spy", {})
        enroll = {"token": token, "node_id": "a-spy", "public_key": public_text(spy.key),
                  "cert_sha256": spy.cert_sha256}
        assert signed_post(plane, ENROLL, enroll, spy.key, "a-spy").status_code == 201
        assert signed_post(plane, HEARTBEAT, beat("a-spy", spy.url, 2.0), spy.key, "a-spy").status_code == 200
        call = first_call(ask(plane, QUESTION, [PYTHON]))
    finally:
        spy.shutdown()
    assert call["status"] == "ok" and call["attempts"] == 2 and call["node"] in plane.nodes, call
    [(headers, body)] = spy.captured  # a real job, signed by the control plane for a-spy
    assert json.loads(body)["tool"] == "python"
    signed = {k: v for k, v in headers.items() if k.startswith("x-llmops-") or k == "content-type"}
    for node in plane.nodes.values():
        replayed = httpx.post(node.url + "/v1/jobs", content=body, headers=signed, verify=False)
        assert replayed.status_code == 401 and "expected 'control-plane' for 'node-" in replayed.text


def test_a_replayed_job_gets_nothing(plane: Plane) -> None:
    """A job exactly as the control plane signs it (its key, from its 0600 state file), sent twice."""
    cp_key = load_key(plane.cp_state / "control-plane.key")
    job = Job(id="replay-1", tool="python", runtime="python", code="print(6 * 7)", driver="bwrap")

    async def run() -> None:
        async with NodeClient(plane.nodes["node-plain"].url, cp_key, pin(plane, "node-plain"),
                              boot=listed(plane)["node-plain"]["boot"]) as plain:
            captured = plain.signed("POST", "/v1/jobs", job_to_dict(job))
            first = await plain.send(captured)
            assert first["stdout"].strip() == "42"
            with pytest.raises(AuthError, match="replayed nonce"):
                await plain.send(captured)  # the same node twice
            async with NodeClient(plane.nodes["node-secure"].url, cp_key, pin(plane, "node-secure"),
                                  boot=listed(plane)["node-secure"]["boot"]) as secure:
                for_secure = secure.signed("POST", "/v1/jobs", job_to_dict(job))
            with pytest.raises(AuthError, match=r"for 'node-secure@\w+', expected 'control-plane' for 'node-plain@"):
                await plain.send(for_secure)  # another node's job

    asyncio.run(run())


def test_a_frozen_node_costs_a_re_placement_not_the_deadline(plane: Plane) -> None:
    frozen_key = Ed25519PrivateKey.generate()
    token = join_token(plane.gateway, "a-frozen", {})
    enroll = {"token": token, "node_id": "a-frozen", "public_key": public_text(frozen_key), "cert_sha256": "cd" * 32}
    assert signed_post(plane, ENROLL, enroll, frozen_key, "a-frozen").status_code == 201
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never answers
        url = f"https://127.0.0.1:{silent.getsockname()[1]}"
        assert signed_post(plane, HEARTBEAT, beat("a-frozen", url, 2.0), frozen_key, "a-frozen").status_code == 200
        started = time.monotonic()
        raw = ask(plane, QUESTION, [PYTHON])
        elapsed = time.monotonic() - started
    call = first_call(raw)
    assert call["status"] == "ok" and call["attempts"] == 2 and call["node"] in plane.nodes, call
    assert DIGEST in (raw.parse().choices[0].message.content or "")
    assert elapsed < 6.0  # was: 15 s waiting for a 504


def test_a_revoked_node_gets_nothing(plane: Plane) -> None:
    revoked = cli(plane.gateway, "revoke", "node-secure")
    assert revoked.returncode == 0, revoked.stderr
    key = load_key(plane.states["node-secure"] / "node.key")
    refused = signed_post(plane, HEARTBEAT, beat("node-secure", plane.nodes["node-secure"].url), key, "node-secure")
    assert refused.status_code == 401 and "revoked" in refused.text
    entry = listed(plane)["node-secure"]
    assert entry["revoked_at"] is not None and not entry["live"]
    with pytest.raises(openai.APIStatusError) as info:
        ask(plane, "Please run keyed_echo.", [KEYED])  # the only node left lacks the label: nobody gets the secret
    assert info.value.status_code == 503 and "tier=secure" in str(info.value.body)
    for _ in range(3):
        assert first_call(ask(plane, QUESTION, [PYTHON]))["node"] == "node-plain"
