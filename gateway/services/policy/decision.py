"""Raw engine results → ``Decision``. Anything malformed or undefined is a deny."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.kernel.policy import Decision, Obligations

UNDEFINED = "policy result is undefined (no decision rule matched): denied by default"


def to_decision(result: Any) -> Decision:
    if not isinstance(result, Mapping) or not isinstance(result.get("allow"), bool):
        return Decision(False, (UNDEFINED,))
    return Decision(result["allow"], _strings(result.get("reasons")), _obligations(result.get("obligations")))


def _obligations(raw: Any) -> Obligations:
    if not isinstance(raw, Mapping):
        return Obligations()
    cap = raw.get("max_tokens")
    return Obligations(
        allowed_tools=_strings(raw["allowed_tools"]) if raw.get("allowed_tools") is not None else None,
        allowed_secrets=_strings(raw.get("allowed_secrets")),
        allowed_egress=_strings(raw.get("allowed_egress")),
        allowed_regions=_strings(raw["allowed_regions"]) if raw.get("allowed_regions") is not None else None,
        max_tokens=cap if isinstance(cap, int) and not isinstance(cap, bool) else None,
        redact=_strings(raw.get("redact")),
    )


def _strings(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, (list, tuple, set, frozenset)):
        return tuple(sorted(str(v) for v in raw))
    return ()
