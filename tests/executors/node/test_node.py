"""The node agent as a real subprocess: signed jobs via NodeClient, 401s, heartbeats."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from executors.errors import AuthError, JobRejected
from executors.node.client import NodeClient
from executors.signing import NonceCache, sign, verify
from executors.spec import Grants, Job

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]
SECRET = b"test-node-secret"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def control_plane() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    beats: list[dict[str, Any]] = []
    nonces = NonceCache()

    async def heartbeat(request: web.Request) -> web.Response:
        body = await request.read()
        verify(SECRET, "POST", request.path, dict(request.headers), body, nonces)
        beats.append(json.loads(body))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/internal/nodes/heartbeat", heartbeat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", beats
    await runner.cleanup()


@pytest.fixture(scope="session")
def node(control_plane: tuple[str, list[dict[str, Any]]]) -> Iterator[str]:
    env = {**os.environ, "LLMOPS_NODE_SECRET": SECRET.decode()}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "executors.node",
            "--port",
            "0",
            "--drivers",
            "bwrap,wasm,microvm",
            "--control-plane",
            control_plane[0],
            "--heartbeat-seconds",
            "0.5",
            "--labels",
            "region=eu,zone=a",
            "--datasets",
            "docs",
            "--slots",
            "2",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("llmops-node listening on http://"), line
    yield line.rsplit(" ", 1)[1].strip()
    proc.terminate()
    proc.wait(timeout=20)


async def test_signed_python_job_returns_the_digest(node: str) -> None:
    async with NodeClient(node, SECRET) as client:
        result = await client.run(
            Job(
                id="j1",
                tool="python",
                runtime="python",
                code="import hashlib,sys;print(hashlib.sha256(sys.stdin.read().encode()).hexdigest())",
                stdin="hello",
            )
        )
    assert result.exit_code == 0
    assert result.stdout.strip() == hashlib.sha256(b"hello").hexdigest()


async def test_outputs_are_redacted(node: str) -> None:
    async with NodeClient(node, SECRET) as client:
        job = Job(
            id="j2",
            tool="python",
            runtime="python",
            code="print(open('/run/secrets/API_KEY').read())",
            grants=Grants(secrets={"API_KEY": "sk-live-123456"}, secret_files=("API_KEY",)),
        )
        result = await client.run(job)
    assert "sk-live-123456" not in result.stdout
    assert "[REDACTED:API_KEY]" in result.stdout


async def test_unsigned_and_badly_signed_requests_get_401(node: str) -> None:
    body = json.dumps({"id": "x", "tool": "python", "runtime": "python", "code": "print(1)"}).encode()
    async with aiohttp.ClientSession() as session:
        async with session.post(node + "/v1/jobs", data=body) as response:
            assert response.status == 401
        headers = sign(b"wrong-secret", "POST", "/v1/jobs", body)
        async with session.post(node + "/v1/jobs", data=body, headers=headers) as response:
            assert response.status == 401
        good = sign(SECRET, "POST", "/v1/jobs", body)
        async with session.post(node + "/v1/jobs", data=body, headers=good) as response:
            assert response.status == 200
        async with session.post(node + "/v1/jobs", data=body, headers=good) as response:
            assert response.status == 401  # replay
    async with NodeClient(node, b"wrong-secret") as client:
        with pytest.raises(AuthError):
            await client.status()


async def test_status_and_bad_jobs(node: str) -> None:
    async with NodeClient(node, SECRET) as client:
        status = await client.status()
        with pytest.raises(JobRejected):
            await client.run(Job(id="j3", tool="x", runtime="image", image="none", argv=("true",)))
    assert status["labels"]["region"] == "eu" and "python" in status["labels"]["runtimes"]
    assert status["drivers"]["bwrap"]["available"] and not status["drivers"]["microvm"]["available"]
    assert status["free_slots"] == 2 and status["datasets"] == ["docs"]


async def test_heartbeats_reach_the_control_plane(
    node: str, control_plane: tuple[str, list[dict[str, Any]]]
) -> None:
    for _ in range(50):
        if control_plane[1]:
            break
        await asyncio.sleep(0.1)
    beat = control_plane[1][-1]
    assert beat["url"] == node and beat["labels"]["zone"] == "a" and "bwrap" in beat["drivers"]
