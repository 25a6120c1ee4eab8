"""Start real servers as child processes and wait until they listen."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import pytest

_LISTENING = re.compile(r"listening on (https?://\S+)")
ROOT = Path(__file__).resolve().parents[2]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(what: str) -> None:
    """A missing service skips locally and fails in CI: CI must never pass by skipping."""
    if in_ci():
        pytest.fail(f"{what} is not available, and CI=true requires it")
    pytest.skip(f"{what} is not available")


class ServerProcess:
    """A child process that prints ``... listening on http(s)://HOST:PORT`` when ready."""

    def __init__(self, argv: Sequence[str], *, env: dict[str, str] | None = None, stream: str = "stdout") -> None:
        self.argv = list(argv)
        self.env = {**os.environ, **(env or {})}
        self.stream = stream
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.output: list[str] = []

    def start(self, timeout_s: float = 30.0) -> ServerProcess:
        self.proc = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
            cwd=ROOT,
            start_new_session=True,
        )
        watched = self.proc.stdout if self.stream == "stdout" else self.proc.stderr
        other = self.proc.stderr if self.stream == "stdout" else self.proc.stdout
        assert watched is not None and other is not None
        found = threading.Event()
        threading.Thread(target=self._read, args=(watched, found), daemon=True).start()
        threading.Thread(target=self._read, args=(other, None), daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while not found.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.argv} did not start:\n" + "".join(self.output[-40:]))
        return self

    def _read(self, stream: IO[bytes], found: threading.Event | None) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace")
            self.output.append(line)
            if found is not None and not found.is_set():
                match = _LISTENING.search(line)
                if match:
                    self.url = match.group(1)
                    found.set()

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout_s: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.proc.wait(5)
        return self.proc.returncode

    def logs(self) -> str:
        return "".join(self.output)


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
