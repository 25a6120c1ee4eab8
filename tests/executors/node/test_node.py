"""The node agent as a real subprocess over real TLS: enrollment, jobs signed for it, signed answers, heartbeats.

The control plane here is a small aiohttp app around the real ``NodeBook`` (tokens, enrollment).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from executors.errors import AuthError, JobRejected, NodeError
from executors.inner import InnerAnswer, InnerCall
from executors.node.client import NodeClient, NodePin
from executors.signing import CONTROL_PLANE, SIGNER_HEADER, NonceCache, load_public, sign, verify
from executors.spec import Grants, Job
from gateway.kernel.errors import GatewayError
from routers.scheduler.enrollment import NodeBook
from tests.support.processes import ServerProcess, python_module

pytestmark = pytest.mark.integration


@dataclass
class FakeControlPlane:
    url: str
    book: NodeBook
    beats: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def control_plane_app(cp: FakeControlPlane) -> web.Application:
    nonces = NonceCache()
    book = cp.book

    async def enroll(request: web.Request) -> web.Response:
        body = await request.read()
        data = json.loads(body)
        try:
            verify(load_public(data["public_key"]), "POST", request.path, dict(request.headers), body,
                   signer=data["node_id"], audience=CONTROL_PLANE, nonces=nonces)
            node = book.enroll(data["token"], data["node_id"], data["public_key"], data["cert_sha256"])
        except AuthError as exc:
            return web.json_response({"error": str(exc)}, status=401)
        except GatewayError as err:
            return web.json_response(err.envelope(), status=err.status)
        return web.json_response({"node_id": node.node_id, "labels": dict(node.labels),
                                  "control_plane_key": book.public_key}, status=201)

    async def heartbeat(request: web.Request) -> web.Response:
        body = await request.read()
        node = book.trusted(request.headers.get(SIGNER_HEADER, ""))
        assert node is not None
        verify(load_public(node.public_key), "POST", request.path, dict(request.headers), body,
               signer=node.node_id, audience=CONTROL_PLANE, nonces=nonces)
        cp.beats.append((node.node_id, json.loads(body)))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/internal/nodes/enroll", enroll)
    app.router.add_post("/internal/nodes/heartbeat", heartbeat)
    return app


@pytest.fixture(scope="session")
def control_plane() -> Iterator[FakeControlPlane]:
    """The fake control plane in its own thread and loop: nodes enroll while the test blocks on them."""
    cp = FakeControlPlane("", NodeBook(Ed25519PrivateKey.generate()))
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(control_plane_app(cp))

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        cp.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    yield cp
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def node_argv(cp: FakeControlPlane, state: Path, *extra: str) -> list[str]:
    return python_module("executors.node", "--port", "0", "--control-plane", cp.url, "--state-dir", str(state),
                         "--heartbeat-seconds", "0.5", *extra)


@pytest.fixture(scope="session")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("node") / "state"


@pytest.fixture(scope="session")
def node(control_plane: FakeControlPlane, state: Path) -> Iterator[ServerProcess]:
    token, _ = control_plane.book.issue({"region": "eu", "zone": "a"}, "n1")
    argv = node_argv(control_plane, state, "--node-id", "n1", "--drivers", "bwrap,wasm,microvm",
                     "--labels", "region=eu,zone=a", "--datasets", "docs", "--slots", "2")
    proc = ServerProcess(argv, env={"LLMOPS_JOIN_TOKEN": token}).start(timeout_s=60)
    yield proc
    proc.stop()


def boot_of(cp: FakeControlPlane, node: ServerProcess) -> str:
    """The boot id ``node``'s process sends in its heartbeats."""
    for _ in range(100):
        boots = [beat["boot"] for _, beat in cp.beats if beat["url"] == node.url]
        if boots:
            return str(boots[-1])
        time.sleep(0.05)
    raise AssertionError(f"no heartbeat from {node.url}")


def client(cp: FakeControlPlane, node: ServerProcess, **pin: Any) -> NodeClient:
    enrolled = cp.book.get("n1")
    assert enrolled is not None
    real = enrolled.pin()
    chosen = NodePin(pin.get("node_id", real.node_id), pin.get("public_key", real.public_key),
                     pin.get("cert_sha256", real.cert_sha256))
    return NodeClient(node.url, pin.get("key", cp.book.key), chosen, boot=pin.get("boot", boot_of(cp, node)))


async def test_signed_python_job_returns_the_digest_over_tls(control_plane: FakeControlPlane,
                                                               node: ServerProcess) -> None:
    assert node.url.startswith("https://127.0.0.1:")
    async with client(control_plane, node) as c:
        code = "import hashlib,sys;print(hashlib.sha256(sys.stdin.read().encode()).hexdigest())"
        result = await c.run(Job(id="j1", tool="python", runtime="python", stdin="hello", code=code))
    assert result.exit_code == 0
    assert result.stdout.strip() == hashlib.sha256(b"hello").hexdigest()


async def test_outputs_are_redacted(control_plane: FakeControlPlane, node: ServerProcess) -> None:
    job = Job(id="j2", tool="python", runtime="python", code="print(open('/run/secrets/API_KEY').read())",
              grants=Grants(secrets={"API_KEY": "sk-live-123456"}, secret_files=("API_KEY",)))
    async with client(control_plane, node) as c:
        result = await c.run(job)
    assert "sk-live-123456" not in result.stdout and "[REDACTED:API_KEY]" in result.stdout


async def test_a_code_jobs_calls_are_answered_over_signed_exchanges(control_plane: FakeControlPlane,
                                                                      node: ServerProcess) -> None:
    asked: list[InnerCall] = []

    async def answer(call: InnerCall) -> InnerAnswer:
        asked.append(call)
        return InnerAnswer("ok", f"{call.name} ran {call.arguments['n']}")

    script = "from llmops_tools import call\nfor n in (1, 2):\n    print(call('python', {'n': n}))"
    async with client(control_plane, node) as c:
        result = await c.run(Job(id="code-1", tool="code", runtime="code", code=script), answer)
        unanswered = await c.run(Job(id="code-2", tool="code", runtime="code", code=script))
        with pytest.raises(NodeError, match="404"):
            answered = {"call_id": "1", "answer": {"status": "ok", "content": ""}}
            await c.send(c.signed("POST", "/v1/jobs/none/answer", answered))
    assert [(a.name, dict(a.arguments)) for a in asked] == [("python", {"n": 1}), ("python", {"n": 2})]
    assert result.exit_code == 0 and result.stdout.splitlines() == ["python ran 1", "python ran 2"]
    assert unanswered.exit_code == 1 and "ToolError: tool calls are not available to this job" in unanswered.stderr


async def test_unsigned_foreign_misaddressed_and_replayed_requests_get_401(
    control_plane: FakeControlPlane, node: ServerProcess
) -> None:
    body = json.dumps({"id": "x", "tool": "python", "runtime": "python", "code": "print(1)"}).encode()
    other_key = Ed25519PrivateKey.generate()
    me = f"n1@{boot_of(control_plane, node)}"
    good = sign(control_plane.book.key, "POST", "/v1/jobs", body, signer=CONTROL_PLANE, audience=me)
    attempts = [
        ({}, 401),
        (sign(other_key, "POST", "/v1/jobs", body, signer=CONTROL_PLANE, audience=me), 401),  # not the pinned key
        (sign(control_plane.book.key, "POST", "/v1/jobs", body, signer=CONTROL_PLANE, audience="n2"), 401),
        (sign(control_plane.book.key, "POST", "/v1/jobs", body, signer=CONTROL_PLANE, audience="n1"), 401),  # no boot
        (good, 200),
        (good, 401),  # the same job again: replay
    ]
    async with aiohttp.ClientSession() as session:
        for headers, expected in attempts:
            async with session.post(node.url + "/v1/jobs", data=body, headers=headers, ssl=False) as response:
                assert response.status == expected, (headers, await response.text())


async def test_answers_are_checked_against_the_enrolled_key_and_certificate(
    control_plane: FakeControlPlane, node: ServerProcess
) -> None:
    async with client(control_plane, node, public_key=Ed25519PrivateKey.generate().public_key()) as c:
        with pytest.raises(AuthError, match="bad signature"):
            await c.status()  # an answer not signed by the key we enrolled is refused
    async with client(control_plane, node, cert_sha256=b"\0" * 32) as c:
        with pytest.raises(AuthError, match="another TLS certificate"):
            await c.status()


async def test_status_and_bad_jobs(control_plane: FakeControlPlane, node: ServerProcess) -> None:
    async with client(control_plane, node) as c:
        status = await c.status()
        with pytest.raises(JobRejected):
            await c.run(Job(id="j3", tool="x", runtime="image", image="none", argv=("true",)))
    assert status["labels"]["region"] == "eu" and "python" in status["labels"]["runtimes"]
    assert status["drivers"]["bwrap"]["available"] and not status["drivers"]["microvm"]["available"]
    assert status["free_slots"] == 2 and status["datasets"] == ["docs"]


async def test_heartbeats_are_signed_by_the_node_key(control_plane: FakeControlPlane, node: ServerProcess) -> None:
    for _ in range(50):
        if control_plane.beats:
            break
        await asyncio.sleep(0.1)
    node_id, beat = control_plane.beats[-1]
    assert node_id == "n1" and beat["url"] == node.url and beat["interval_s"] == 0.5
    assert beat["labels"]["zone"] == "a" and "bwrap" in beat["drivers"]


def test_key_material_is_private_and_off_the_command_line(node: ServerProcess, state: Path) -> None:
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for name in ("node.key", "tls.key", "identity.json"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name
    assert node.proc is not None
    cmdline = Path(f"/proc/{node.proc.pid}/cmdline").read_bytes()
    assert b"llmj1" not in cmdline and b"secret" not in cmdline.lower()
    refused = subprocess.run([sys.executable, "-m", "executors.node", "serve", "--secret", "x"], capture_output=True)
    assert refused.returncode == 2 and b"--secret" in refused.stderr


def test_a_restart_reuses_the_identity_and_a_used_token_is_refused(
    control_plane: FakeControlPlane, node: ServerProcess, state: Path, tmp_path: Path
) -> None:
    again = ServerProcess(node_argv(control_plane, state, "--drivers", "microvm")).start(timeout_s=30)

    async def replay_after_restart() -> None:
        async with client(control_plane, node) as first:
            before = first.signed("GET", "/v1/status", None)  # signed for the first process, never sent
        async with client(control_plane, again, boot=boot_of(control_plane, node)) as restarted:
            with pytest.raises(AuthError, match="expected 'control-plane' for 'n1@"):
                await restarted.send(before)
        async with client(control_plane, again) as current:
            assert (await current.status())["node_id"] == "n1"

    try:
        assert any("llmops-node n1 listening on https://" in line for line in again.output)
        assert boot_of(control_plane, again) != boot_of(control_plane, node)
        asyncio.run(replay_after_restart())
    finally:
        again.stop()
    token, _ = control_plane.book.issue({}, None)
    token_file = tmp_path / "join"
    token_file.write_text(token)
    os.chmod(token_file, 0o644)
    loose = subprocess.run(node_argv(control_plane, tmp_path / "s1", "--join-file", str(token_file)),
                           capture_output=True, text=True, timeout=30)
    assert loose.returncode == 1 and "0600" in loose.stderr  # a token file others can read is refused
    first = ServerProcess(node_argv(control_plane, tmp_path / "s2", "--drivers", "microvm", "--node-id", "n9"),
                          env={"LLMOPS_JOIN_TOKEN": token}).start(timeout_s=30)
    first.stop()
    second = subprocess.run(node_argv(control_plane, tmp_path / "s3", "--node-id", "n10"), capture_output=True,
                            text=True, timeout=30, env={**os.environ, "LLMOPS_JOIN_TOKEN": token})
    assert second.returncode == 1 and "401" in second.stderr  # single use
