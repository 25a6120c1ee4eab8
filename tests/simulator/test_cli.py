import argparse

import httpx

from simulator import add_arguments
from simulator.cli import behaviour_from_args

from .conftest import running_sim


def test_flags_build_the_behaviour() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--port", "0", "--name", "b", "--models", "x, y", "--ttft-ms", "5", "--error-rate", "0.1"]
    )
    behaviour = behaviour_from_args(args)
    assert (behaviour.name, behaviour.models, behaviour.ttft_ms, behaviour.error_rate) == (
        "b",
        ("x", "y"),
        5.0,
        0.1,
    )


def test_subprocess_announces_its_port_and_honours_flags() -> None:
    with running_sim("--name", "second", "--api-key", "k", "--models", "a,b") as url:
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        assert httpx.get(f"{url}/v1/models").status_code == 401
        listed = httpx.get(f"{url}/v1/models", headers={"authorization": "Bearer k"})
        assert listed.headers["x-sim-name"] == "second"
        assert [m["id"] for m in listed.json()["data"]] == ["a", "b"]
