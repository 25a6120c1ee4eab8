"""The ``"llmops"`` request extension, parsed once into a typed value every stage reads.

``{"llmops": {"max_steps": 4, "max_time_s": 30, "max_cost_usd": 0.01, "workspace": "w1",
"priority": "batch", "data_region": "eu", "vector_store_ids": ["vs_1"], "cache": "bypass"}}``

The endpoint parses it when the body is read (a wrong type is a 400 naming ``llmops.KEY``); no stage
pops or edits it; the router removes it from what the model receives, last.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.kernel.errors import InvalidRequest

FIELD = "llmops"


@dataclass(frozen=True, slots=True)
class Extension:
    """``None`` fields were not given; the stage that reads one applies its configured default and cap."""

    max_steps: float | None = None
    max_time_s: float | None = None
    max_cost_usd: float | None = None
    workspace: str | None = None
    batch: bool = False
    data_region: str | None = None
    vector_store_ids: tuple[str, ...] | None = None
    cache: str | None = None


NONE = Extension()


def parse_extension(body: dict[str, Any]) -> Extension:
    raw = body.get(FIELD)
    if raw is None:
        return NONE
    if not isinstance(raw, dict):
        raise InvalidRequest("'llmops' must be an object.", param=FIELD)
    ids = raw.get("vector_store_ids")
    if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) and i for i in ids)):
        raise InvalidRequest("'llmops.vector_store_ids' must be an array of ids.", param=f"{FIELD}.vector_store_ids")
    cache = raw.get("cache")
    if cache is not None and cache not in ("bypass", "use", "refresh"):
        raise InvalidRequest("'llmops.cache' must be 'use', 'refresh' or 'bypass'.", param=f"{FIELD}.cache")
    return Extension(
        max_steps=_number(raw, "max_steps"),
        max_time_s=_number(raw, "max_time_s"),
        max_cost_usd=_number(raw, "max_cost_usd"),
        workspace=_string(raw, "workspace"),
        batch=raw.get("priority") == "batch",
        data_region=_string(raw, "data_region"),
        vector_store_ids=tuple(ids) if ids is not None else None,
        cache=cache,
    )


def _number(raw: dict[str, Any], key: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise InvalidRequest(f"'llmops.{key}' must be a positive number.", param=f"{FIELD}.{key}")
    return float(value)


def _string(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidRequest(f"'llmops.{key}' must be a non-empty string.", param=f"{FIELD}.{key}")
    return value
