"""User-defined container tools: an image and a command, run cold with the same hardening."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from executors.drivers import load_driver
from executors.drivers.base import SandboxDriver
from executors.drivers.docker_image import image_tag
from executors.spec import Grants, Job, Limits
from tests.executors.conftest import require

UPPER = (
    "import sys, os; print(sys.stdin.read().upper()); print(os.getuid()); print(os.environ.get('TOKEN', '-'));"
    " print(open('/run/secrets/TOKEN').read() if os.path.exists('/run/secrets/TOKEN') else '-')"
)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def docker() -> AsyncIterator[SandboxDriver]:
    instance = load_driver("docker", pool_size=1)
    require(instance)
    async with instance:
        yield instance


def tool_job(stdin: str, grants: Grants | None = None) -> Job:
    return Job(id="img-1", tool="upper", runtime="image", image=image_tag(), stdin=stdin,
               argv=("/usr/bin/python3", "-I", "-c", UPPER), limits=Limits(wall_seconds=20),
               grants=grants or Grants())


@pytest.mark.asyncio(loop_scope="session")
async def test_an_image_tool_reads_stdin_as_a_non_root_user(docker: SandboxDriver) -> None:
    result = await docker.run(tool_job("make me loud"))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.split()
    assert lines[:3] == ["MAKE", "ME", "LOUD"]
    assert lines[3] != "0" and lines[4] == "-"  # not root; no secret unless granted


@pytest.mark.asyncio(loop_scope="session")
async def test_an_image_tool_gets_a_secret_only_as_a_granted_file(docker: SandboxDriver) -> None:
    result = await docker.run(tool_job("x", Grants(secrets={"TOKEN": "s3cr3t-value"})))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split()[-2:] == ["-", "-"]  # granted, but not inside: neither env nor file
    as_file = Grants(secrets={"TOKEN": "s3cr3t-value"}, secret_files=("TOKEN",))
    result = await docker.run(tool_job("x", as_file))
    assert result.exit_code == 0, result.stderr
    # The driver hands over what was granted as a file; the node agent redacts it from outputs.
    assert result.stdout.split()[-2:] == ["-", "s3cr3t-value"]
