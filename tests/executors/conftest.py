"""Driver fixtures: a missing prerequisite skips locally and FAILS when CI=true."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from executors.drivers import load_driver
from executors.drivers.base import SandboxDriver

DRIVER_NAMES = ("bwrap", "docker", "wasm")
DRIVER_OPTIONS = {"docker": {"pool_size": 1}}


def require(driver: SandboxDriver) -> None:
    """Skip (locally) or fail (CI=true) when ``driver`` cannot run here."""
    if driver.available():
        return
    reason = f"driver {driver.name} unavailable: {driver.unavailable_reason()}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest_asyncio.fixture(scope="session", loop_scope="session", params=DRIVER_NAMES)
async def driver(request: pytest.FixtureRequest) -> AsyncIterator[SandboxDriver]:
    instance = load_driver(request.param, **DRIVER_OPTIONS.get(request.param, {}))
    require(instance)
    async with instance:
        yield instance


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=("bwrap", "docker"))
async def process_driver(request: pytest.FixtureRequest) -> AsyncIterator[SandboxDriver]:
    """The drivers that run real processes and can hand a sandbox a tmpfs file (not wasm, which counts
    fuel per instance and has no processes)."""
    instance = load_driver(request.param, **DRIVER_OPTIONS.get(request.param, {}))
    require(instance)
    async with instance:
        yield instance
