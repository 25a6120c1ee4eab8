"""The README is a contract: its curl lines and Python example work as written on embedded defaults."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from tests.conftest import GatewayFactory
from tests.integration.test_agent_loop import ADMIN, node_drivers, start_node, wait_for_tools
from tests.support.configs import sim_config
from tests.support.processes import ROOT, ServerProcess, python_module, unavailable

pytestmark = pytest.mark.integration

README = (ROOT / "README.md").read_text()
DEFAULT_URL = "http://127.0.0.1:8080"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def curl_commands() -> list[str]:
    text = "\n".join(b for b in blocks("bash") if "curl" in b)
    return [c.strip() for c in re.split(r"\n\s*\n", text.replace("\\\n", " ")) if c.strip().startswith("curl")]


@pytest.fixture(scope="module")
def embedded() -> Iterator[ServerProcess]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "LLMOPS_CONFIG")}
    proc = ServerProcess(python_module("gateway.cli", "serve", "--port", "0"), stream="stderr")
    proc.env = env
    proc.start()
    yield proc
    proc.stop()


def test_embedded_default_prints_a_working_curl(embedded: ServerProcess) -> None:
    deadline = time.monotonic() + 10
    while "-d '" not in embedded.logs() and time.monotonic() < deadline:
        time.sleep(0.05)
    printed = embedded.logs()
    assert "embedded defaults" in printed
    lines = printed.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("curl "))
    data = next(line for line in lines[start:] if line.strip().startswith("-d '"))
    curl = lines[start].rstrip(" \\") + " " + data.strip()
    out = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=30, check=True).stdout
    answer = json.loads(out)
    assert "choices" in answer, answer
    assert answer["choices"][0]["message"]["content"]


def test_readme_curl_lines(embedded: ServerProcess) -> None:
    commands = curl_commands()
    assert len(commands) >= 4
    for command in commands:
        run = subprocess.run(
            ["bash", "-c", command.replace(DEFAULT_URL, embedded.url)], capture_output=True, text=True, timeout=30
        )
        assert run.returncode == 0, (command, run.stderr)
        if '"stream": true' in command:
            assert run.stdout.rstrip().endswith("data: [DONE]")
        else:
            assert json.loads(run.stdout).get("error") is None, run.stdout  # a Response says "error": null


def sdk_examples() -> list[str]:
    """The client examples (not the MCP one, nor the code-mode script, which runs inside a sandbox)."""
    return [b for b in blocks("python") if "/mcp" not in b and "llmops_tools" not in b]


@pytest.mark.parametrize("index", range(len(sdk_examples())))
def test_readme_python_examples(embedded: ServerProcess, tmp_path: Path, index: int) -> None:
    """Each Python example (the ``openai`` SDK's, the ``anthropic`` SDK's) prints its answer, then its stream."""
    script = tmp_path / "example.py"
    script.write_text(sdk_examples()[index].replace(DEFAULT_URL, embedded.url))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("Simulated answer to:") for line in lines), run.stdout


def test_readme_mcp_example(sim: ServerProcess, start_gateway: GatewayFactory, tmp_path: Path) -> None:
    """The MCP section's config, with the simulator as backend and a bwrap node enrolled, runs its client."""
    (config_text,) = [b for b in blocks("yaml") if "enrollment" in b and "LLMOPS_KEY" in b]
    (example,) = [b for b in blocks("python") if "/mcp" in b]
    config: dict[str, Any] = {**sim_config(sim.url, "sim-chat"), **yaml.safe_load(config_text)}
    config["auth"]["static_keys"].append(ADMIN)
    env = {"LLMOPS_KEY": "sk-readme-mcp-0123456789"}
    gateway = start_gateway(config, env=env)
    node = start_node(gateway, "bwrap", "readme-node")
    try:
        if "bwrap" not in node_drivers(node):
            unavailable("the bwrap driver")
        wait_for_tools(openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=env["LLMOPS_KEY"], max_retries=0))
        script = tmp_path / "mcp_example.py"
        script.write_text(example.replace(DEFAULT_URL, gateway.url))
        run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                             env={**os.environ, **env})
    finally:
        node.stop()
    assert run.returncode == 0, run.stderr
    assert run.stdout == "['http_request', 'python', 'shell']\n42\n"
