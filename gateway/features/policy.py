"""Feature module: build the policy engine, register it as ``POLICY_ENGINE``, poll files for reloads."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.embedded import config_dir
from gateway.kernel.config.sections.policy import PolicySettings
from gateway.kernel.observability.logging import JsonLog
from gateway.kernel.policy import POLICY_ENGINE, PolicyLoadError
from gateway.runtime import Runtime
from gateway.services.policy.service import Evaluator, PolicyService


def resolve_paths(paths: tuple[str, ...]) -> tuple[str, ...]:
    """Relative paths are taken from the working directory, else from the project root."""
    root = config_dir().parent
    return tuple(p if Path(p).is_absolute() or Path(p).exists() else str(root / p) for p in paths)


def make_evaluator(settings: PolicySettings) -> Evaluator:
    if settings.engine == "opa":
        from gateway.services.policy.opa import OpaEvaluator

        if not settings.opa_url:
            raise PolicyLoadError("policy.opa_url is required with engine: opa")
        return OpaEvaluator(settings.opa_url, settings.decision, settings.opa_timeout_ms)
    from gateway.services.policy.rego import RegoEvaluator

    return RegoEvaluator(resolve_paths(settings.paths), settings.decision)


async def start(runtime: Runtime) -> None:
    settings = runtime.settings.policy
    evaluator = make_evaluator(settings)
    runtime.resources.push_async_callback(evaluator.aclose)
    service = PolicyService(evaluator, settings, runtime.log)
    runtime.provide(POLICY_ENGINE, service)
    if settings.engine == "rego" and settings.reload_interval_s > 0:
        task = asyncio.create_task(watch(service, settings.reload_interval_s, runtime.log))
        runtime.resources.callback(task.cancel)


async def watch(service: PolicyService, interval_s: float, log: JsonLog) -> None:
    """Poll the policy files; a broken edit is logged and the previous policy stays in force."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            if service.reload():
                log.info("policy_reloaded")
        except PolicyLoadError as exc:
            log.error("policy_reload_failed", error=str(exc))
        except OSError as exc:
            log.error("policy_reload_failed", error=f"{type(exc).__name__}: {exc}")
