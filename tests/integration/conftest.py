from __future__ import annotations

import openai
import pytest

from tests.conftest import GatewayFactory
from tests.support.configs import sim_config
from tests.support.processes import ServerProcess


@pytest.fixture(scope="module")
def gateway(sim: ServerProcess, start_gateway: GatewayFactory) -> ServerProcess:
    return start_gateway(sim_config(sim.url))


@pytest.fixture(scope="module")
def client(gateway: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0)


@pytest.fixture
def aclient(gateway: ServerProcess) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0)
