"""Limits per job, not per process: CPU time summed over a job's processes, a CPU rate cap, and
output caps that hold after JSON encoding with honest ``truncated`` flags."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from executors.drivers import load_driver
from executors.drivers.base import SandboxDriver, decode_output, encoded_size, fit_encoded
from executors.drivers.docker_image import image_tag
from executors.spec import Job, Limits, Result
from tests.executors.conftest import DRIVER_OPTIONS, require

asyncio = pytest.mark.asyncio(loop_scope="session")

# Three processes spin and each prints its own CPU time every 50 ms: the last numbers printed
# before the kill add up to what the job used, whatever killed it.
SPINNERS = """
import os, sys, time
for n in range(3):
    if os.fork() == 0:
        last = 0.0
        while True:
            used = time.process_time()
            if used - last >= 0.05:
                os.write(1, f"cpu {n} {used:.3f}\\n".encode())
                last = used
os.wait()
"""

# Two processes spin for a fixed wall time, then report their CPU time.
RATE = """
import os, time
for n in range(2):
    if os.fork() == 0:
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            pass
        os.write(1, f"cpu {n} {time.process_time():.3f}\\n".encode())
        os._exit(0)
os.wait(); os.wait()
"""


def cpu_used(result: Result) -> float:
    """Sum of the last CPU time each process printed."""
    last: dict[str, float] = {}
    for n, used in re.findall(r"cpu (\d) ([\d.]+)", result.stdout):
        last[n] = float(used)
    return sum(last.values())


def job(code: str, **limits: float) -> Job:
    return Job(id=f"lim-{secrets.token_hex(4)}", tool="python", runtime="python", code=code,
               limits=Limits(**limits))  # type: ignore[arg-type]



@asyncio
async def test_cpu_time_is_summed_over_the_jobs_processes(process_driver: SandboxDriver) -> None:
    result = await process_driver.run(job(SPINNERS, cpu_seconds=1, wall_seconds=20))
    assert result.limit == "cpu", result
    assert result.exit_code != 0
    assert 0.5 < cpu_used(result) < 1.5, result.stdout  # main: about 3 (1 CPU-second per process)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def docker() -> AsyncIterator[SandboxDriver]:
    instance = load_driver("docker", **DRIVER_OPTIONS["docker"])
    require(instance)
    async with instance:
        yield instance


@asyncio
async def test_an_image_tools_cpu_time_is_summed_too(docker: SandboxDriver) -> None:
    tool = Job(id="img-cpu", tool="t", runtime="image", image=image_tag(),
               argv=("/usr/bin/python3", "-I", "-c", SPINNERS), limits=Limits(cpu_seconds=1, wall_seconds=20))
    result = await docker.run(tool)
    assert result.limit == "cpu", result
    assert 0.5 < cpu_used(result) < 1.5, result.stdout  # main: no CPU limit at all until the wall


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def slow_bwrap() -> AsyncIterator[SandboxDriver]:
    instance = load_driver("bwrap", cpus=0.25)
    require(instance)
    async with instance:
        yield instance


@asyncio
async def test_bwrap_caps_the_cpu_rate(slow_bwrap: SandboxDriver) -> None:
    result = await slow_bwrap.run(job(RATE, cpu_seconds=30, wall_seconds=20))
    assert result.exit_code == 0, result
    assert len(re.findall("cpu", result.stdout)) == 2, result.stdout
    # 2 processes x 2 s of wall at 0.25 CPU: 0.5 CPU-seconds (plus scheduling slack), not up to 4.
    assert cpu_used(result) < 0.9, result.stdout


@asyncio
async def test_a_200_mib_output_comes_back_truncated(driver: SandboxDriver) -> None:
    code = "import sys\nchunk = 'y' * (1 << 20)\nfor _ in range(200):\n    sys.stdout.write(chunk)\n"
    result = await driver.run(job(code, output_bytes=100_000, wall_seconds=30))
    assert result.truncated, result.limit
    assert result.limit == "output"
    assert 0 < len(result.stdout) <= 100_000 and set(result.stdout) == {"y"}


@asyncio
async def test_escaped_output_is_capped_after_encoding(driver: SandboxDriver) -> None:
    # \x01 is one byte written but six (\u0001) in the JSON a node answers with.
    code = "import sys\nsys.stdout.write('\\x01' * 50_000)\nsys.stderr.write('\\\\' * 50_000)\n"
    result = await driver.run(job(code, output_bytes=10_000, wall_seconds=20))
    assert result.truncated
    assert encoded_size(result.stdout) <= 10_000 and encoded_size(result.stderr) <= 10_000
    assert len(json.dumps(result.stdout, ensure_ascii=False)) <= 10_002
    assert len(result.stdout) > 1000  # cut at the cap, not emptied


def test_decode_output_caps_the_encoded_size() -> None:
    text, cut = decode_output(b"\x01" * 100, 60)
    assert cut and text == "\x01" * 10 and encoded_size(text) == 60
    text, cut = decode_output(b"\xff" * 30, 30)  # invalid UTF-8: 3 bytes per replacement character
    assert cut and encoded_size(text) <= 30 and text == "\ufffd" * 10
    assert decode_output(b"plain", 5) == ("plain", False)
    assert decode_output(b"plain!", 5) == ("plain", True)
    assert fit_encoded("é" * 10, 5) == ("éé", True)
