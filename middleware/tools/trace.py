"""The agent loop's trace, returned as ``"llmops": {"trace": [...]}`` in the response body."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

CallStatus = Literal["ok", "error", "denied", "client"]


@dataclass(slots=True)
class CallTrace:
    """One tool call: ``client`` means it was handed back to the client (a client-side tool).

    A ``code`` call lists the calls its script made in ``inner`` (each with ``via: "code"``)."""

    id: str
    name: str
    status: CallStatus = "ok"
    node: str | None = None
    driver: str | None = None
    duration_ms: float | None = None
    queued_ms: float | None = None
    exit_code: int | None = None
    attempts: int | None = None
    decision_id: str | None = None
    reason: str | None = None
    via: str | None = None
    inner: list[CallTrace] | None = None


@dataclass(slots=True)
class StepTrace:
    step: int
    model_ms: float
    finish_reason: str | None = None
    calls: list[CallTrace] = field(default_factory=list)


def trace_json(steps: list[StepTrace]) -> list[dict[str, Any]]:
    return [_compact(asdict(step)) for step in steps]


def call_json(call: CallTrace) -> dict[str, Any]:
    """One call's trace, without the fields it did not get to (no node for a denied call)."""
    return dict(_compact(asdict(call)))


def _compact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    return value
