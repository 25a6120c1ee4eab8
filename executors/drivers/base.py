"""The one sandbox interface, plus helpers every driver shares.

Every driver enforces ``Limits`` (cpu, memory, wall, pids, output), gives the job no network, a
read-only root, a writable scratch dir at ``SCRATCH`` and a non-root user, and builds the job's
environment from nothing but ``job_env(job)`` (the node's own environment never enters, and
granted secrets never do either: see ``Grants.secret_files`` and ``SECRETS_DIR``).
"""

from __future__ import annotations

import abc
import json
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Self

from executors.spec import Job, Result

SCRATCH = "/scratch"
SECRETS_DIR = "/run/secrets"
# The node's egress proxy for the job, when it has an egress grant (executors/egress_proxy.py).
EGRESS_MOUNT = "/run/llmops"
EGRESS_SOCKET = f"{EGRESS_MOUNT}/egress.sock"
# A code job's tools socket (executors/node/code_session.py) and the stub its script imports.
TOOLS_MOUNT = "/run/llmops-tools"
TOOLS_SOCKET = f"{TOOLS_MOUNT}/tools.sock"
STUB_DIR = "/job/lib"
SANDBOX_UID = 65534
BASE_ENV: Mapping[str, str] = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": SCRATCH,
    "TMPDIR": SCRATCH,
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
}


class SandboxDriver(abc.ABC):
    """Runs ``Job``s in isolation. Owns its warm resources: use ``async with`` or ``aclose()``."""

    name: str = "abstract"
    runtimes: frozenset[str] = frozenset()

    @abc.abstractmethod
    def available(self) -> bool:
        """Cheap probe: can this driver run here? ``unavailable_reason()`` says why not."""

    def unavailable_reason(self) -> str:
        return "" if self.available() else f"{self.name} is not available"

    @abc.abstractmethod
    async def run(self, job: Job) -> Result:
        """Run one job to completion. Raises ``SandboxError`` only when the sandbox itself fails."""

    async def start(self) -> None:
        """Prepare warm resources (pools, compiled modules). Idempotent."""
        return None

    async def aclose(self) -> None:
        """Release everything ``start`` or ``run`` acquired. Idempotent."""
        return None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def job_env(job: Job) -> dict[str, str]:
    """The complete environment of a sandboxed job: base, then job env, and where its egress proxy
    and tools socket listen when it has them. Never a secret."""
    env = {**BASE_ENV, **job.env}
    if job.egress_dir is not None:
        env["LLMOPS_EGRESS_SOCKET"] = EGRESS_SOCKET
    if job.tools_dir is not None:
        env["LLMOPS_TOOLS_SOCKET"] = TOOLS_SOCKET
    return env


def encoded_size(text: str) -> int:
    """Bytes ``text`` takes as a JSON string on the wire (UTF-8, escapes included, no quotes)."""
    return len(json.dumps(text, ensure_ascii=False).encode()) - 2


def fit_encoded(text: str, limit: int) -> tuple[str, bool]:
    """The longest prefix of ``text`` whose JSON encoding fits in ``limit`` bytes; and whether it was cut.

    Escapes (``\\u0001`` is 6 bytes for 1) and replacement characters (3 bytes for 1 bad byte)
    make text grow when encoded, so the cap is checked on the encoding, by bisection.
    """
    if encoded_size(text) <= limit:
        return text, False
    low, high = 0, min(len(text), limit)
    while low < high:
        middle = (low + high + 1) // 2
        if encoded_size(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low], True


def decode_output(data: bytes, limit: int) -> tuple[str, bool]:
    """Text of ``data`` whose JSON encoding takes at most ``limit`` bytes, and whether it was cut."""
    text, cut = fit_encoded(data[:limit].decode("utf-8", "replace"), limit)
    return text, cut or len(data) > limit


class Stopwatch:
    """Milliseconds since construction (monotonic)."""

    def __init__(self) -> None:
        self._start = time.perf_counter()

    def ms(self) -> float:
        return round((time.perf_counter() - self._start) * 1000, 3)
