"""The embedded default: a simulator child process as the backend, state in memory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import yaml

from gateway.kernel.config import ConfigError

_LISTENING = re.compile(r"listening on (http://\S+)")
OPENAI_MODELS = (
    "gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1", "text-embedding-3-small",
    "text-embedding-3-large", "dall-e-3", "tts-1", "gpt-4o-mini-tts", "whisper-1",
)


def config_dir() -> Path:
    """``config/`` of the source tree, or ``LLMOPS_CONFIG_DIR``."""
    override = os.environ.get("LLMOPS_CONFIG_DIR")
    return Path(override) if override else Path(__file__).resolve().parent.parent / "config"


def default_config(sim_url: str, environ: Mapping[str, str]) -> dict[str, Any]:
    """``config/default.yaml`` with the simulator's address; plus OpenAI when a key is set."""
    text = (config_dir() / "default.yaml").read_text(encoding="utf-8")
    raw: Any = yaml.safe_load(text.replace("${SIM_BASE_URL}", sim_url))
    if not isinstance(raw, dict):
        raise ConfigError("config/default.yaml: must be a mapping")
    if environ.get("OPENAI_API_KEY"):
        raw.setdefault("backends", []).append(
            {"name": "openai", "type": "openai", "base_url": "https://api.openai.com/v1",
             "api_key_env": "OPENAI_API_KEY"}
        )
        raw.setdefault("models", []).extend(
            {"name": m, "owned_by": "openai", "deployments": [{"backend": "openai"}]} for m in OPENAI_MODELS
        )
    return raw


class SimulatorProcess:
    """``llmops sim`` as a child process; owned by the caller, stopped with ``stop()``."""

    def __init__(self, *, host: str = "127.0.0.1", extra_args: tuple[str, ...] = ()) -> None:
        self._argv = [sys.executable, "-m", "simulator", "--host", host, "--port", "0", *extra_args]
        self._proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout_s: float = 20.0) -> str:
        self._proc = subprocess.Popen(self._argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self._proc.stdout is not None
        line = _readline(self._proc.stdout, timeout_s)
        found = _LISTENING.search(line)
        if not found:
            self.stop()
            raise RuntimeError(f"the simulator did not start: {line.strip()!r}")
        self.url = found.group(1)
        threading.Thread(target=_drain, args=(self._proc.stdout,), daemon=True).start()
        return self.url

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()


def _readline(stream: IO[bytes], timeout_s: float) -> str:
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout_s)
    return result[0].decode(errors="replace") if result else ""


def _drain(stream: IO[bytes]) -> None:
    for _ in iter(stream.readline, b""):
        pass
