"""Startup that says what happened: one line naming the key, exit code 2, no traceback; SIGTERM reaps
the embedded simulator as SIGINT does."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from gateway.cli import main
from tests.support.processes import ROOT, ServerProcess, python_module

BASE = {"backends": [{"name": "a", "base_url": "http://127.0.0.1:9/v1"}],
        "models": [{"name": "m", "deployments": [{"backend": "a"}]}]}


def config(tmp_path: Path, **extra: object) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({**BASE, **extra}))
    return path


def test_a_port_in_use_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--config", str(config(tmp_path)), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot start: server.port: cannot listen on 127.0.0.1:{port}" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_an_unreadable_config_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--config", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert "cannot read" in err and "Traceback" not in err


def test_an_unreachable_required_store_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    dsn = f"postgresql://llmops:secret-pw@127.0.0.1:{port}/db"
    path = config(tmp_path, chain=["authn"], auth={"store": "postgres"},
                  postgres={"dsn": dsn, "connect_timeout_s": 1})
    done = subprocess.run(python_module("gateway.cli", "serve", "--config", str(path), "--port", "0"), cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "cannot start: postgres.dsn: PostgreSQL did not answer" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout and "secret-pw" not in done.stderr + done.stdout
    assert "listening on" not in done.stderr  # announced only once it serves


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(c) for c in text]
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text().split()
    return stat[2] != "Z"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_embedded_defaults_reap_the_simulator(sig: signal.Signals) -> None:
    gateway = ServerProcess(python_module("gateway.cli", "serve", "--port", "0"), stream="stderr").start()
    assert gateway.proc is not None
    sims = children(gateway.proc.pid)
    assert sims, "the embedded gateway runs its simulator as a child"
    gateway.proc.send_signal(sig)
    gateway.proc.wait(20)
    deadline = time.monotonic() + 10
    while any(alive(p) for p in sims) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in sims), f"simulator left running after {sig.name}"
