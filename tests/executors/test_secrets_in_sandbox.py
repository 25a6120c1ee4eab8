"""Granted secrets never enter a sandbox's environment or argv, nor a container's inspect output.

By default a secret is not passed in at all (the node's broker uses it); a tool the policy grants
a secret inside (``Grants.secret_files``) reads it from a 0400 tmpfs file at /run/secrets/NAME.
While each job runs, every process on the host is scanned (``/proc/*/environ`` and ``cmdline``:
the bwrap supervisor, the sandbox, the runner, the container's processes) and, for Docker, every
sandbox container is inspected.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from executors.drivers import load_driver
from executors.drivers.base import SandboxDriver
from executors.drivers.bwrap import SECRET_FILE_MAX, secret_pipes
from executors.drivers.docker import LABEL, SOCKET
from executors.drivers.docker_image import image_tag
from executors.errors import JobRejected
from executors.spec import Grants, Job, Limits, Result, job_from_dict, job_to_dict
from tests.executors.conftest import DRIVER_OPTIONS, require

asyncio_test = pytest.mark.asyncio(loop_scope="session")

SHOW = """
import glob, os, sys, time
time.sleep(float(sys.argv[-1]) if sys.argv[-1].replace('.', '').isdigit() else 2.0)
print("ENV", sorted(os.environ.items()))
for path in glob.glob("/proc/[0-9]*/environ") + glob.glob("/proc/[0-9]*/cmdline"):
    try:
        print(path, open(path, "rb").read())
    except OSError:
        pass
"""

READ = """
import hashlib, os, time
time.sleep(1.5)
path = "/run/secrets/API_KEY"
info = os.stat(path)
print("SHA", hashlib.sha256(open(path, "rb").read()).hexdigest())
print("MODE", oct(info.st_mode & 0o777), info.st_uid == os.getuid())
print("ENV", sorted(os.environ.items()))
"""


def host_processes_holding(value: bytes) -> list[str]:
    """Every process on the host whose environment or argv contains ``value``."""
    found = []
    for path in [*Path("/proc").glob("[0-9]*/environ"), *Path("/proc").glob("[0-9]*/cmdline")]:
        try:
            if value in path.read_bytes():
                found.append(str(path))
        except OSError:
            continue
    return found


def containers_holding(value: str) -> list[str]:
    """Every sandbox container whose ``docker inspect`` shows ``value``."""
    import docker

    client = docker.DockerClient(base_url=f"unix://{SOCKET}")
    try:
        found = []
        for container in client.api.containers(all=True, filters={"label": LABEL}):
            try:
                detail: Any = client.api.inspect_container(container["Id"])
            except docker.errors.NotFound:
                continue
            if value in json.dumps(detail):
                found.append(container["Id"])
        return found
    finally:
        client.close()


async def run_and_watch(driver: SandboxDriver, job: Job, value: str) -> tuple[Result, list[str]]:
    """Run ``job`` while looking for ``value`` in every process and (Docker) every container."""
    task = asyncio.create_task(driver.run(job))
    leaks: list[str] = []
    for _ in range(4):
        await asyncio.sleep(0.35)
        leaks += await asyncio.to_thread(host_processes_holding, value.encode())
        if driver.name == "docker":
            leaks += await asyncio.to_thread(containers_holding, value)
    return await task, leaks


def granted(value: str, *, as_file: bool = False) -> Grants:
    if as_file:
        return Grants(secrets={"API_KEY": value}, secret_files=("API_KEY",))
    return Grants(secrets={"API_KEY": value})


def python_job(code: str, grants: Grants) -> Job:
    return Job(id=f"sec-{secrets.token_hex(4)}", tool="t", runtime="python", code=code, grants=grants,
               limits=Limits(wall_seconds=20))


@asyncio_test
async def test_a_granted_secret_is_nowhere_in_the_sandbox_by_default(driver: SandboxDriver) -> None:
    value = f"sv-{secrets.token_hex(12)}"
    result, leaks = await run_and_watch(driver, python_job(SHOW, granted(value)), value)
    assert "ENV" in result.stdout, result
    assert value not in result.stdout and "API_KEY" not in result.stdout
    assert leaks == []



@asyncio_test
async def test_a_secret_granted_as_a_file_is_readable_only_there(process_driver: SandboxDriver) -> None:
    value = f"sf-{secrets.token_hex(12)}"
    result, leaks = await run_and_watch(process_driver, python_job(READ, granted(value, as_file=True)), value)
    assert f"SHA {hashlib.sha256(value.encode()).hexdigest()}" in result.stdout, result
    assert "MODE 0o400 True" in result.stdout
    assert value not in result.stdout  # not in the environment either
    assert leaks == []


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def docker() -> AsyncIterator[SandboxDriver]:
    instance = load_driver("docker", **DRIVER_OPTIONS["docker"])
    require(instance)
    async with instance:
        yield instance


@asyncio_test
async def test_an_image_tool_gets_its_secret_as_a_file_never_in_inspect(docker: SandboxDriver) -> None:
    value = f"si-{secrets.token_hex(12)}"
    plain = Job(id="img-env", tool="t", runtime="image", image=image_tag(), argv=("/usr/bin/python3", "-I", "-c",
                SHOW, "1.5"), grants=granted(value), limits=Limits(wall_seconds=20))
    result, leaks = await run_and_watch(docker, plain, value)
    assert "ENV" in result.stdout and value not in result.stdout and leaks == [], (result, leaks)
    as_file = Job(id="img-file", tool="t", runtime="image", image=image_tag(),
                  argv=("/usr/bin/python3", "-I", "-c", READ), grants=granted(value, as_file=True),
                  limits=Limits(wall_seconds=20))
    result, leaks = await run_and_watch(docker, as_file, value)
    assert f"SHA {hashlib.sha256(value.encode()).hexdigest()}" in result.stdout, result
    assert "MODE 0o400 True" in result.stdout and leaks == []


@asyncio_test
async def test_wasm_refuses_secret_files() -> None:
    wasm = load_driver("wasm")
    require(wasm)
    with pytest.raises(JobRejected, match="secret files"):
        await wasm.run(python_job("print(1)", granted("0123456789", as_file=True)))


def test_only_granted_secrets_can_be_files() -> None:
    with pytest.raises(JobRejected):
        python_job("", Grants(secret_files=("API_KEY",)))
    with pytest.raises(JobRejected):
        python_job("", Grants(secrets={"../x": "v" * 10}, secret_files=("../x",)))


def test_secret_files_cross_the_node_channel() -> None:
    job = python_job("", granted("0123456789", as_file=True))
    again = job_from_dict(json.loads(json.dumps(job_to_dict(job))))
    assert again.grants.secret_files == ("API_KEY",) and again.grants.secrets == {"API_KEY": "0123456789"}


def test_a_bwrap_secret_file_fits_in_one_pipe_buffer() -> None:
    with pytest.raises(JobRejected, match="over"):
        secret_pipes(python_job("", granted("x" * (SECRET_FILE_MAX + 1), as_file=True)))
    pipes = secret_pipes(python_job("", granted("v" * 100, as_file=True)))
    try:
        assert [name for name, _ in pipes] == ["API_KEY"]
        assert os.read(pipes[0][1], 1000) == b"v" * 100
    finally:
        for _, fd in pipes:
            os.close(fd)
