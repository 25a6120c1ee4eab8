"""Fixtures: a real simulator subprocess (``python -m simulator --port 0``) and clients for it."""

from __future__ import annotations

import contextlib
import select
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import httpx
import openai
import pytest
import pytest_asyncio

LISTENING = "llmops-sim listening on "


@contextlib.contextmanager
def running_sim(*flags: str) -> Iterator[str]:
    """Start a simulator, yield its base URL (read from the first stdout line), stop it."""
    cmd = [sys.executable, "-m", "simulator", "--port", "0", *flags]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        line = proc.stdout.readline() if ready else ""
        assert line.startswith(LISTENING), f"simulator did not start: {line!r}"
        yield line[len(LISTENING) :].strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def sim_url() -> Iterator[str]:
    with running_sim("--name", "test") as url:
        yield url


@pytest.fixture
def http(sim_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim_url, timeout=10) as client:
        client.delete("/_sim/requests")
        yield client


@pytest.fixture
def client(sim_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{sim_url}/v1", api_key="test", max_retries=0, timeout=10) as oai:
        yield oai


@pytest_asyncio.fixture(loop_scope="function")
async def aclient(sim_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=f"{sim_url}/v1", api_key="test", max_retries=0, timeout=10) as oai:
        yield oai
