"""Session-wide real services and process factories shared by every test package."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.processes import ServerProcess, python_module
from tests.support.services import run_postgres, run_redis

# regorus reports an undefined rule as an error; with RUST_BACKTRACE=1 in the environment each such error
# also symbolizes a backtrace, slow enough to outlast a policy engine's timeout (the OPA tests' server).
os.environ["RUST_LIB_BACKTRACE"] = "0"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from run_redis(tmp_path_factory.mktemp("redis"))


@pytest.fixture(scope="session")
def postgres_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from run_postgres(tmp_path_factory.mktemp("pg"))


SimFactory = Callable[..., ServerProcess]
GatewayFactory = Callable[..., ServerProcess]


@pytest.fixture(scope="session")
def start_sim() -> Iterator[SimFactory]:
    """``start_sim("--name", "a", "--itl-ms", "5")`` → a running simulator (``.url``)."""
    started: list[ServerProcess] = []

    def start(*args: str) -> ServerProcess:
        proc = ServerProcess(python_module("simulator", "--host", "127.0.0.1", "--port", "0", *args)).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="session")
def sim(start_sim: SimFactory) -> ServerProcess:
    """One shared simulator for tests that don't change its behaviour."""
    return start_sim("--name", "shared")


@pytest.fixture(scope="session")
def start_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayFactory]:
    """``start_gateway({...config...}, env={...})`` → a running gateway (``.url``)."""
    started: list[ServerProcess] = []

    def start(config: dict[str, object], env: dict[str, str] | None = None) -> ServerProcess:
        path = Path(tmp_path_factory.mktemp("gw")) / "gateway.yaml"
        path.write_text(yaml.safe_dump(config))
        argv = python_module("gateway.cli", "serve", "--config", str(path), "--port", "0")
        proc = ServerProcess(argv, env=env, stream="stderr").start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
