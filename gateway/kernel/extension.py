"""The ``"llmops"`` request extension, parsed once into a typed value every stage reads.

``{"llmops": {"max_steps": 4, "max_time_s": 30, "max_cost_usd": 0.01, "workspace": "w1",
"priority": "batch", "data_region": "eu", "vector_store_ids": ["vs_1"], "cache": "bypass"}}``

The endpoint parses it when the body is read (a wrong type is a 400 ``invalid_value`` naming
``llmops.KEY``); no stage pops or edits it; the router removes it from what the model receives, last.
A workspace name is 1-64 of ``A-Z a-z 0-9 _ -`` (one path component on the node, where the data
plane checks the same pattern, ``executors.spec.WORKSPACE_NAME``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gateway.kernel.errors import InvalidRequest

FIELD = "llmops"
INVALID = "invalid_value"
WORKSPACE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


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
        raise InvalidRequest("'llmops' must be an object.", param=FIELD, code=INVALID)
    ids = raw.get("vector_store_ids")
    if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) and i for i in ids)):
        raise _invalid("vector_store_ids", "must be an array of ids")
    cache = raw.get("cache")
    if cache is not None and cache not in ("bypass", "use", "refresh"):
        raise _invalid("cache", "must be 'use', 'refresh' or 'bypass'")
    return Extension(
        max_steps=_number(raw, "max_steps"),
        max_time_s=_number(raw, "max_time_s"),
        max_cost_usd=_number(raw, "max_cost_usd"),
        workspace=_workspace(raw),
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
        raise _invalid(key, "must be a positive number")
    return float(value)


def _string(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise _invalid(key, "must be a non-empty string")
    return value


def _workspace(raw: dict[str, Any]) -> str | None:
    value = raw.get("workspace")
    if value is not None and not (isinstance(value, str) and WORKSPACE_NAME.fullmatch(value)):
        raise _invalid("workspace", "must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-'")
    return value


def _invalid(key: str, rule: str) -> InvalidRequest:
    return InvalidRequest(f"'{FIELD}.{key}' {rule}.", param=f"{FIELD}.{key}", code=INVALID)
