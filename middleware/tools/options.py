"""Per-request loop options from the ``"llmops"`` request extension, capped by config.

``{"llmops": {"max_steps": 4, "max_time_s": 30, "max_cost_usd": 0.01, "workspace": "w1",
"priority": "batch", "data_region": "eu"}}``: a request may lower the configured limits, never raise
them. The extension is removed before the request goes upstream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.kernel.config.sections.tools import ToolsSettings
from gateway.kernel.errors import InvalidRequest

EXTENSION = "llmops"


@dataclass(frozen=True, slots=True)
class LoopOptions:
    max_steps: int
    max_time_s: float
    max_cost_usd: float | None = None
    workspace: str | None = None
    batch: bool = False
    data_region: str | None = None


def loop_options(ext: Any, settings: ToolsSettings) -> LoopOptions:
    if ext is None:
        ext = {}
    if not isinstance(ext, dict):
        raise InvalidRequest("'llmops' must be an object.", param=EXTENSION)
    cost = _number(ext, "max_cost_usd", settings.max_cost_usd)
    if settings.max_cost_usd is not None and cost is not None:
        cost = min(cost, settings.max_cost_usd)
    return LoopOptions(
        max_steps=int(min(_number(ext, "max_steps", settings.max_steps) or 1, settings.max_steps)),
        max_time_s=min(_number(ext, "max_time_s", settings.max_time_s) or settings.max_time_s, settings.max_time_s),
        max_cost_usd=cost,
        workspace=_string(ext, "workspace"),
        batch=ext.get("priority") == "batch",
        data_region=_string(ext, "data_region"),
    )


def _number(ext: dict[str, Any], key: str, default: float | None) -> float | None:
    value = ext.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise InvalidRequest(f"'llmops.{key}' must be a positive number.", param=f"{EXTENSION}.{key}")
    return float(value)


def _string(ext: dict[str, Any], key: str) -> str | None:
    value = ext.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidRequest(f"'llmops.{key}' must be a non-empty string.", param=f"{EXTENSION}.{key}")
    return value
