"""The reconcile loop: desired state from the config file (or directory), SIGHUP and the admin API, applied
without a restart. A change is validated whole (settings, cross-references, the checks ``serve`` runs, then
building its request path: policies compile, backends exist); an invalid one is rejected with all its errors
and the running configuration stays untouched. A valid one is built beside the running one and swapped in
for new requests; the replaced one closes when its in-flight requests are done (``switch``)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp

from gateway.checks import problems
from gateway.kernel.config import ConfigError, Settings, load_settings, settings_from_mapping
from gateway.kernel.config.loader import config_files
from gateway.kernel.observability.metrics import Metrics
from gateway.kernel.policy import PolicyLoadError
from gateway.reconcile.plan import Plan, digest, effective, plan, policy_paths, restart_keys, stamp
from gateway.reconcile.state import resource_states
from gateway.reconcile.switch import Generation, Switch
from gateway.wiring import Gateway, startup_message

BUILD_ERRORS: tuple[type[BaseException], ...] = (ConfigError, PolicyLoadError, OSError, ValueError)
HEALTH_WAIT_S = 2.0  # how long an apply waits for the new backends' first health check
REPORT_EVERY_S = 5.0  # how often the watch loop refreshes llmops_resource_ready


@dataclass(frozen=True, slots=True)
class Outcome:
    applied: bool
    generation: int
    plan: Plan | None = None
    errors: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"applied": self.applied, "generation": self.generation}
        if self.plan is not None:
            out.update(self.plan.to_json())
        if self.errors:
            out["errors"] = list(self.errors)
        return out


@dataclass(slots=True)
class Rejection:
    origin: str
    errors: tuple[str, ...]
    at: float = field(default_factory=time.time)


class Reconciler:
    """Owns the switch's generations after startup: ``start``, ``apply``, ``reload``, ``report``."""

    def __init__(self, root: Gateway, switch: Switch, build: Callable[[Gateway], ASGIApp], source: Path | None,
                 prepare: Callable[[Settings], Settings]) -> None:
        self.root = root
        self.switch = switch
        self._build = build
        self.source = source
        self._prepare = prepare
        self.desired = root.settings  # the last accepted desired state (restart-only keys as asked)
        self.rejected: Rejection | None = None
        self._metrics: Metrics = root.metrics
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stamp = self._files_stamp()
        root.control = self  # the admin API's /admin/state (routes are built with it)

    @property
    def running(self) -> Settings:
        current = self.switch.current
        return current.gateway.settings if current is not None else self.root.settings

    @property
    def generation(self) -> int:
        return self.switch.current.number if self.switch.current is not None else 0

    @property
    def version(self) -> str:
        """What a caller names as ``base`` to apply over exactly this state (optimistic concurrency)."""
        return f"{self.generation}-{digest(self.desired)[:16]}"

    def start(self) -> None:
        self.switch.swap(Generation(1, self.root, self._build(self.root)), self.running.reconcile.drain_timeout_s)
        self._metrics.config_generation.set(1)
        self._spawn(self._watch())
        with contextlib.suppress(NotImplementedError, RuntimeError):  # no signals off the main thread
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, lambda: self._spawn(self.reload("sighup")))

    async def aclose(self) -> None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.switch.aclose()

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- sources -------------------------------------------------------------------------------

    async def reload(self, origin: str) -> Outcome:
        """Read the config file (or directory) again and apply it."""
        if self.source is None:
            self.root.log.warning("config_reload_skipped", origin=origin, reason="no --config file to read")
            return Outcome(False, self.generation, errors=("no configuration file: started on embedded defaults",))
        try:
            desired = load_settings(self.source)
        except ConfigError as exc:
            return self._reject(origin, _lines(exc))
        return await self.apply(desired, origin)

    async def apply_document(self, raw: dict[str, Any], origin: str, *, dry_run: bool = False) -> Outcome:
        """A desired-state document (the config file's shape, ``${ENV}`` taken from the gateway's environment)."""
        try:
            desired = settings_from_mapping(raw)
        except ConfigError as exc:
            return self._reject(origin, _lines(exc), record=not dry_run)
        return await self.apply(desired, origin, dry_run=dry_run)

    # --- the loop -------------------------------------------------------------------------------

    async def apply(self, desired: Settings, origin: str, *, dry_run: bool = False) -> Outcome:
        desired = self._prepare(desired)
        found = problems(desired)
        if found:
            return self._reject(origin, tuple(found), record=not dry_run)
        async with self._lock:
            running = self.running
            change = plan(running, desired)
            if dry_run:
                return Outcome(False, self.generation, change)
            if not change.changes:
                return self._accepted(desired, origin, change)
            try:
                successor = await self.root.successor(effective(running, desired))
                app = self._build(successor)
            except BUILD_ERRORS as exc:
                return self._reject(origin, _lines(exc) if isinstance(exc, ConfigError) else (startup_message(exc),))
            await _first_health_check(successor)
            self._swap(successor, app)
            return self._accepted(desired, origin, change)

    def _swap(self, successor: Gateway, app: ASGIApp) -> None:
        number = self.generation + 1
        self.switch.swap(Generation(number, successor, app), successor.settings.reconcile.drain_timeout_s)
        # background responses run through the root gateway: they follow the newest configuration
        self.root.handler, self.root.registry = successor.handler, successor.registry
        self._metrics.config_generation.set(number)

    def _accepted(self, desired: Settings, origin: str, change: Plan) -> Outcome:
        self.desired, self.rejected = desired, None
        self._stamp = self._files_stamp()
        self._metrics.config_applies.labels("applied" if change.changes else "unchanged").inc()
        self._metrics.config_restart_required.set(len(change.restart))
        self._spawn(self.report())
        if change.changes or change.restart:
            self.root.log.info("config_applied", origin=origin, generation=self.generation,
                               changes=[f"{c.action} {c.kind}/{c.name}" for c in change.changes],
                               restart_required=list(change.restart))
        return Outcome(True, self.generation, change)

    def _reject(self, origin: str, errors: tuple[str, ...], *, record: bool = True) -> Outcome:
        if record:
            self.rejected = Rejection(origin, errors)
            self._metrics.config_applies.labels("rejected").inc()
            self.root.log.error("config_rejected", origin=origin, errors=list(errors))
            self._spawn(self.report())
        return Outcome(False, self.generation, errors=errors)

    async def _watch(self) -> None:
        reported = 0.0
        while True:
            interval = self.running.reconcile.watch_interval_s
            await asyncio.sleep(interval or REPORT_EVERY_S)
            try:
                if time.monotonic() - reported >= REPORT_EVERY_S:
                    reported = time.monotonic()
                    await self.report()  # keeps llmops_resource_ready current (health checks move it)
                if interval > 0 and self.source is not None:
                    await self._reload_if_changed()
            except Exception as exc:  # a background loop: log it and keep watching
                self.root.log.error("config_watch_failed", error=f"{type(exc).__name__}: {exc}")

    async def _reload_if_changed(self) -> None:
        current = self._files_stamp()
        if current != self._stamp:
            self._stamp = current
            await self.reload("file")

    def _files_stamp(self) -> tuple[tuple[str, int, int], ...]:
        files = config_files(self.source) if self.source is not None else []
        return stamp([*files, *policy_paths(self.running)])

    # --- state ----------------------------------------------------------------------------------

    async def report(self) -> dict[str, Any]:
        current = self.switch.current
        gateway = current.gateway if current is not None else self.root
        rejected = self.rejected
        resources = await resource_states(gateway, rejected.errors if rejected is not None else ())
        self._metrics.resource_ready.clear()
        for r in resources:
            self._metrics.resource_ready.labels(r["kind"], r["name"]).set(1 if r["state"] == "ready" else 0)
        return {
            "generation": self.generation,
            "version": self.version,
            "source": str(self.source) if self.source is not None else None,
            "resources": resources,
            "draining": self.switch.draining(),
            "restart_required": list(restart_keys(self.running, self.desired)),
            "rejected": None if rejected is None else {"origin": rejected.origin, "errors": list(rejected.errors),
                                                       "at": rejected.at},
        }


async def _first_health_check(gateway: Gateway) -> None:
    """Ask the new backends once (an unanswering one gets no traffic from the start), briefly."""
    if gateway.health is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gateway.health.check_once(), HEALTH_WAIT_S)


def _lines(exc: BaseException) -> tuple[str, ...]:
    text = str(exc) or type(exc).__name__
    return tuple(line.strip() for line in text.splitlines() if line.strip())
