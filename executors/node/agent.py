"""``NodeAgent``: owns the drivers and the slots, picks a driver per job, redacts outputs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from executors.drivers.base import SandboxDriver, fit_encoded
from executors.egress_proxy import EgressProxy
from executors.errors import JobRejected, SandboxError
from executors.http_tool import http_request
from executors.redact import Redactor
from executors.spec import Job, Result

log = logging.getLogger(__name__)

PREFERENCE: dict[str, tuple[str, ...]] = {
    "python": ("bwrap", "docker", "wasm"),
    "shell": ("bwrap", "docker"),
    "wasm": ("wasm",),
    "image": ("docker",),
    "mcp_stdio": ("bwrap",),
}


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
