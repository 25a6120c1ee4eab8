"""Per-request loop options from the parsed ``llmops`` extension (``ctx.extension``), capped by config.

``{"llmops": {"max_steps": 4, "max_time_s": 30, "max_cost_usd": 0.01, "workspace": "w1",
"priority": "batch", "data_region": "eu"}}``: a request may lower the configured limits, never raise them.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.kernel.config.sections.tools import ToolsSettings
from gateway.kernel.extension import Extension


@dataclass(frozen=True, slots=True)
class LoopOptions:
    max_steps: int
    max_time_s: float
    max_cost_usd: float | None = None
    workspace: str | None = None
    batch: bool = False
    data_region: str | None = None


def loop_options(ext: Extension, settings: ToolsSettings) -> LoopOptions:
    cost = ext.max_cost_usd if ext.max_cost_usd is not None else settings.max_cost_usd
    if settings.max_cost_usd is not None and cost is not None:
        cost = min(cost, settings.max_cost_usd)
    steps = ext.max_steps if ext.max_steps is not None else settings.max_steps
    seconds = ext.max_time_s if ext.max_time_s is not None else settings.max_time_s
    return LoopOptions(
        max_steps=max(1, int(min(steps, settings.max_steps))),
        max_time_s=min(seconds, settings.max_time_s),
        max_cost_usd=cost,
        workspace=ext.workspace,
        batch=ext.batch,
        data_region=ext.data_region,
    )
