"""Latency and fault-injection settings.

``Behaviour`` holds the instance defaults (CLI flags, changed at run time by ``POST /_sim/config``).
``Overrides`` is what one request gets after layering, lowest to highest precedence:
defaults < ``x-sim-*`` headers < the body's ``"sim": {...}`` extension object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from simulator.errors import SimError

DEFAULT_MODELS = ("sim-chat", "sim-code", "sim-embed", "sim-image", "sim-tts", "sim-stt")

# request-level knobs: body key -> header name
_OVERRIDE_HEADERS = {
    "ttft_ms": "x-sim-ttft-ms",
    "itl_ms": "x-sim-itl-ms",
    "status": "x-sim-status",
    "disconnect_after": "x-sim-disconnect-after",
    "retry_after": "x-sim-retry-after",
}
_INT_KEYS = frozenset({"status", "disconnect_after", "error_status"})
_NULLABLE = frozenset({"status", "disconnect_after", "retry_after", "api_key"})


@dataclass(frozen=True, slots=True)
class Overrides:
    """Effective knobs for one request. ``status`` forces an error answer when it is >= 400."""

    ttft_ms: float = 0.0
    itl_ms: float = 0.0
    status: int | None = None
    disconnect_after: int | None = None
    retry_after: float | None = None


@dataclass(slots=True)
class Behaviour:
    """Instance defaults; the only mutable configuration, owned by ``SimState``."""

    name: str = "sim"
    models: tuple[str, ...] = DEFAULT_MODELS
    ttft_ms: float = 0.0
    itl_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 500
    api_key: str | None = None
    status: int | None = None
    disconnect_after: int | None = None
    retry_after: float | None = None

    def defaults(self) -> Overrides:
        return Overrides(self.ttft_ms, self.itl_ms, self.status, self.disconnect_after, self.retry_after)

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply ``POST /_sim/config``; validates everything before changing anything."""
        known = {f.name for f in fields(self)}
        parsed = {key: _coerce_setting(key, value) for key, value in changes.items() if key in known}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise SimError(400, f"unknown sim setting(s): {', '.join(unknown)}", param=unknown[0])
        for key, value in parsed.items():
            setattr(self, key, value)

    def snapshot(self) -> dict[str, Any]:
        data = asdict(self)
        data["models"] = list(self.models)
        return data


def _coerce_setting(key: str, value: Any) -> Any:
    if value is None and key in _NULLABLE:
        return None
    if key == "models":
        if isinstance(value, str):
            return tuple(m for m in value.split(",") if m)
        if isinstance(value, list) and all(isinstance(m, str) for m in value):
            return tuple(value)
        raise SimError(400, "'models' must be a list of strings", param=key)
    if key in ("name", "api_key"):
        if not isinstance(value, str):
            raise SimError(400, f"'{key}' must be a string", param=key)
        return value
    if key == "error_rate":
        rate = _number(key, value)
        if not 0.0 <= rate <= 1.0:
            raise SimError(400, "'error_rate' must be between 0 and 1", param=key)
        return rate
    return _knob(key, value)


def _number(key: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SimError(400, f"'{key}' must be a number", param=key) from None
    if isinstance(value, bool) or number != number or number < 0:
        raise SimError(400, f"'{key}' must be a non-negative number", param=key)
    return number


def _knob(key: str, value: Any) -> float | int:
    number = _number(key, value)
    if key in _INT_KEYS:
        if not number.is_integer():
            raise SimError(400, f"'{key}' must be an integer", param=key)
        return int(number)
    return number


def resolve_overrides(defaults: Overrides, headers: Mapping[str, str], body_sim: Any) -> Overrides:
    """Layer headers then the body's ``sim`` object over the defaults (400 on malformed values)."""
    if body_sim is not None and not isinstance(body_sim, dict):
        raise SimError(400, "'sim' must be an object", param="sim")
    changes: dict[str, Any] = {}
    for key, header in _OVERRIDE_HEADERS.items():
        if header in headers:
            changes[key] = _knob(key, headers[header])
    for key, value in (body_sim or {}).items():
        if key in _OVERRIDE_HEADERS:
            changes[key] = None if value is None else _knob(key, value)
    return replace(defaults, **changes) if changes else defaults
