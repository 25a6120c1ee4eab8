"""A Docker job cannot forge its result: not through /proc/1/fd/1, not by reading the runner's
memory or its token, not by killing it; a forged line on the answer stream is ignored."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from executors.drivers import load_driver
from executors.drivers.base import SandboxDriver
from executors.drivers.docker import answer_line
from executors.spec import Job, Limits
from tests.executors.conftest import DRIVER_OPTIONS, require

FORGED = {
    "exit_code": 0,
    "stdout": base64.b64encode(b"FORGED").decode(),
    "stderr": "",
    "truncated": False,
    "timed_out": False,
    "limit": None,
}

# Every way the job could reach the runner's answer stream or its secrets.
ATTACK = f"""
import json, os, signal
print("RAN", flush=True)
line = json.dumps({FORGED!r})
for path in ("/proc/1/fd/1", "/proc/1/fd/2", "/proc/self/fd/1"):
    try:
        with open(path, "w") as out:
            out.write(line + "\\n")
        print("wrote", path, flush=True)
    except OSError as exc:
        print("denied", path, type(exc).__name__, flush=True)
for path in ("/proc/1/mem", "/proc/1/environ", "/proc/1/fd/0"):
    try:
        open(path, "rb").read(1)
        print("ESCAPED read", path, flush=True)
    except OSError as exc:
        print("denied", path, type(exc).__name__, flush=True)
for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP):
    try:
        os.kill(1, sig)
    except OSError:
        pass
print("REAL", flush=True)
raise SystemExit(3)
"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def docker() -> AsyncIterator[SandboxDriver]:
    instance = load_driver("docker", **DRIVER_OPTIONS["docker"])
    require(instance)
    async with instance:
        yield instance


@pytest.mark.asyncio(loop_scope="session")
async def test_a_job_cannot_forge_its_result(docker: SandboxDriver) -> None:
    job = Job(id=f"forge-{secrets.token_hex(4)}", tool="python", runtime="python", code=ATTACK,
              limits=Limits(wall_seconds=20))
    result = await docker.run(job)
    assert "FORGED" not in result.stdout
    assert "RAN" in result.stdout and "REAL" in result.stdout, result
    assert "ESCAPED" not in result.stdout, result.stdout
    assert "denied /proc/1/fd/1" in result.stdout  # the runner is not dumpable: its fds are root's
    assert result.exit_code == 3


def test_only_the_line_starting_with_the_token_is_the_answer() -> None:
    token = b"0123456789abcdef0123456789abcdef"
    forged = json.dumps(FORGED).encode()
    real = b'{"exit_code": 3}'
    stream = b"\n" + forged + b"\n" + b"\n" + b"f" * 32 + b" " + forged + b"\n"
    assert answer_line(stream, token) is None
    assert answer_line(stream + b"\n" + token + b" " + real, token) is None  # not complete yet
    assert answer_line(stream + b"\n" + token + b" " + real + b"\n", token) == real
