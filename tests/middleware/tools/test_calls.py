from __future__ import annotations

from typing import Any

from gateway.kernel.context import RequestContext
from middleware.tools.calls import CallState, data_region
from middleware.tools.options import LoopOptions


def state(options: LoopOptions) -> CallState:
    ctx = RequestContext("r", "chat", "m", {}, {})
    offer: Any = None
    return CallState(ctx, offer, options, deadline=0.0)


def test_tool_jobs_run_near_the_retrieved_data_unless_the_client_says_otherwise() -> None:
    s = state(LoopOptions(max_steps=3, max_time_s=10))
    assert data_region(s) is None
    s.ctx.hints.data_regions = ("eu-west", "us-east")
    assert data_region(s) == "eu-west"
    hinted = state(LoopOptions(max_steps=3, max_time_s=10, data_region="ap-south"))
    hinted.ctx.hints.data_regions = ("eu-west",)
    assert data_region(hinted) == "ap-south"
