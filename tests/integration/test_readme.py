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

import pytest

from tests.support.processes import ROOT, ServerProcess, python_module

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


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_readme_python_examples(embedded: ServerProcess, tmp_path: Path, index: int) -> None:
    """Each Python example (the ``openai`` SDK's, the ``anthropic`` SDK's) prints its answer, then its stream."""
    script = tmp_path / "example.py"
    script.write_text(blocks("python")[index].replace(DEFAULT_URL, embedded.url))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("Simulated answer to:") for line in lines), run.stdout
