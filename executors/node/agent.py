"""``NodeAgent``: owns the drivers and the slots, picks a driver per job, redacts outputs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from executors.drivers.base import SandboxDriver, fit_encoded
from executors.egress_proxy import EgressProxy
from executors.errors import JobRejected, SandboxError
from executors.http_tool import http_request
from executors.inner import IDLE_SECONDS, InnerAnswer, InnerCall
from executors.node.code_session import CodeSession
from executors.redact import Redactor
from executors.spec import Job, Result

log = logging.getLogger(__name__)

PREFERENCE: dict[str, tuple[str, ...]] = {
    "python": ("bwrap", "docker", "wasm"),
    "shell": ("bwrap", "docker"),
    "wasm": ("wasm",),
    "image": ("docker",),
    "code": ("bwrap",),  # needs a tools socket bound into the sandbox: only bwrap binds one
    "mcp_stdio": ("bwrap",),
}


class UnknownJob(LookupError):
    """No running code job has this id (it ended, was abandoned, or never ran here)."""


class NodeAgent:
    """The data plane's job runner. ``start()`` keeps only drivers that come up; ``aclose()`` frees them."""

    def __init__(
        self,
        node_id: str,
        drivers: Sequence[SandboxDriver],
        *,
        slots: int = 2,
        labels: Mapping[str, str] | None = None,
        datasets: Sequence[str] = (),
        code_idle_s: float = IDLE_SECONDS,
    ) -> None:
        self.node_id = node_id
        self.labels = dict(labels or {})
        self.datasets = tuple(datasets)
        self.slots = slots
        self._candidates = list(drivers)
        self._drivers: dict[str, SandboxDriver] = {}
        self._unavailable: dict[str, str] = {}
        self._free = asyncio.Semaphore(slots)
        self._busy = 0
        self._sessions: dict[str, CodeSession] = {}
        self._code_idle_s = code_idle_s  # a code job's call unanswered this long: its control plane is gone

    async def start(self) -> None:
        for driver in self._candidates:
            if not driver.available():
                self._unavailable[driver.name] = driver.unavailable_reason()
                continue
            try:
                await driver.start()
            except SandboxError as exc:
                self._unavailable[driver.name] = str(exc)
                continue
            self._drivers[driver.name] = driver

    async def aclose(self) -> None:
        for job_id in list(self._sessions):
            self._drop(job_id)
        for driver in self._drivers.values():
            with contextlib.suppress(SandboxError):
                await driver.aclose()
        self._drivers.clear()

    @property
    def free_slots(self) -> int:
        return self.slots - self._busy

    def runtimes(self) -> list[str]:
        found = {r for d in self._drivers.values() for r in d.runtimes}
        return sorted(found | {"http"})

    def status(self) -> dict[str, Any]:
        drivers: dict[str, Any] = {
            n: {"available": True, "runtimes": sorted(d.runtimes)} for n, d in self._drivers.items()
        }
        drivers |= {n: {"available": False, "reason": why} for n, why in self._unavailable.items()}
        return {
            "node_id": self.node_id,
            "labels": {**self.labels, "runtimes": ",".join(self.runtimes())},
            "drivers": drivers,
            "free_slots": self.free_slots,
            "slots": self.slots,
            "datasets": list(self.datasets),
        }

    def choose(self, job: Job) -> SandboxDriver:
        """The driver for ``job``: the one it names, else the first available by preference."""
        names = (job.driver,) if job.driver else PREFERENCE.get(job.runtime, ())
        for name in names:
            driver = self._drivers.get(name or "")
            if driver is not None and job.runtime in driver.runtimes:
                return driver
        raise JobRejected(f"no available driver runs runtime {job.runtime!r} (asked: {job.driver or 'any'})")

    async def run(self, job: Job) -> Result:
        """Run ``job`` in a slot and return its result with every granted secret redacted."""
        driver = None if job.runtime == "http" else self.choose(job)
        async with self._free:
            self._busy += 1
            try:
                if driver is None:
                    result = await http_request(job)
                elif job.grants.egress and driver.name != "wasm":
                    async with EgressProxy(job) as directory:
                        result = await driver.run(replace(job, egress_dir=str(directory)))
                else:
                    result = await driver.run(job)
            finally:
                self._busy -= 1
        scrub = Redactor({**job.grants.secrets, **{n: s.value for n, s in job.grants.brokered.items()}})
        # A redaction marker can be longer than what it replaces: the cap is applied again after it.
        stdout, cut_out = fit_encoded(scrub(result.stdout), job.limits.output_bytes)
        stderr, cut_err = fit_encoded(scrub(result.stderr), job.limits.output_bytes)
        truncated = result.truncated or cut_out or cut_err
        return replace(result, stdout=stdout, stderr=stderr, truncated=truncated,
                       limit=result.limit or ("output" if truncated else None))

    async def start_code(self, job: Job) -> InnerCall | Result:
        """Start a code job; its script's first tool call, or its result if it makes none."""
        self.choose(job)
        if job.id in self._sessions:
            raise JobRejected(f"code job {job.id} is already running")
        session = CodeSession(job, self.run, on_idle=lambda: self._drop(job.id), idle_s=self._code_idle_s)
        self._sessions[job.id] = session
        session.start()
        return await self._step(session, session.next())

    async def answer(self, job_id: str, call_id: str, answer: InnerAnswer) -> InnerCall | Result:
        """Answer a running code job's pending call; its next call or its result. ``UnknownJob``."""
        session = self._sessions.get(job_id)
        if session is None:
            raise UnknownJob(job_id)
        return await self._step(session, session.answer(call_id, answer))

    async def _step(self, session: CodeSession, step: Awaitable[InnerCall | Result]) -> InnerCall | Result:
        """Forget the session once its result is out or it failed (a bad answer alone leaves it running)."""
        try:
            outcome = await step
        except JobRejected:
            if session.finished:
                self._drop(session.job.id)
            raise
        except BaseException:
            self._drop(session.job.id)
            raise
        if isinstance(outcome, Result):
            self._sessions.pop(session.job.id, None)
        return outcome

    def _drop(self, job_id: str) -> None:
        """Forget a code job and kill it if it still runs (its control plane is gone)."""
        session = self._sessions.pop(job_id, None)
        if session is not None:
            session.cancel()
