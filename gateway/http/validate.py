"""Validation at the edge for the Files and Vector Stores routes: types, bounds and characters are
checked before anything reaches SQL, so bad input is a 400 naming its ``param`` and nothing stored can
later fail to read back.

=====================  ========================================================================
value                  rule (OpenAI's documented limits where it has them)
=====================  ========================================================================
any string             no NUL, no lone surrogate (PostgreSQL text and JSON refuse both)
``metadata``           an object of at most 16 pairs; keys ≤ 64 chars, values strings ≤ 512 chars
``attributes``         at most 16 pairs; keys ≤ 64 chars; values strings ≤ 512, booleans, or
                       finite numbers within ±2^53 (what JSON readers agree on)
filter values          the same scalars (or arrays of them)
ids (path, ``after``)  ``[A-Za-z0-9_-]{1,128}``: anything else cannot name an object (a 404)
=====================  ========================================================================
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from gateway.kernel.errors import InvalidRequest, NotFound

MAX_PAIRS, MAX_KEY, MAX_VALUE = 16, 64, 512
MAX_SAFE_INT = 2**53
ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(value: Any, param: str, *, max_len: int | None = None, allow_empty: bool = True) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"'{param}' must be a string.", param=param)
    if "\x00" in value or _SURROGATE.search(value):
        raise InvalidRequest(f"'{param}' contains a NUL character or an unpaired surrogate.", param=param)
    if max_len is not None and len(value) > max_len:
        raise InvalidRequest(f"'{param}' is longer than {max_len} characters.", param=param)
    if not allow_empty and not value.strip():
        raise InvalidRequest(f"'{param}' must not be empty.", param=param)
    return value


def plain(value: Any, param: str, depth: int = 0) -> Any:
    """``value`` when no string in it (keys included) has a NUL or a lone surrogate, nesting ≤ 8 levels."""
    if depth > 8:
        raise InvalidRequest(f"'{param}' is nested too deeply.", param=param)
    if isinstance(value, str):
        clean_text(value, param)
    elif isinstance(value, dict):
        for key, item in value.items():
            clean_text(key, f"{param} key")
            plain(item, f"{param}.{key}", depth + 1)
    elif isinstance(value, list):
        for item in value:
            plain(item, param, depth + 1)
    elif isinstance(value, float) and not math.isfinite(value) or isinstance(value, int) and abs(value) > 2**63:
        raise InvalidRequest(f"'{param}' holds a number out of range.", param=param)
    return value


@dataclass(frozen=True, slots=True)
class PathId:
    """An object's id in the URL (``param``), and the 404 that says it names nothing of ``what``."""

    param: str
    what: str

    def of(self, request: Request) -> str:
        value: str = request.path_params[self.param]
        if not ID.fullmatch(value):
            raise self.missing(value)
        return value

    def missing(self, value: str) -> NotFound:
        return NotFound(f"{self.what} with id '{value[:128]}' not found.", param=self.param)


def object_id(value: str, what: str) -> str:
    """A path or cursor id: anything that cannot be an id names nothing (404, never SQL)."""
    if not ID.fullmatch(value):
        raise NotFound(f"No such {what}: {value[:64]!r}.")
    return value


def metadata(value: Any, param: str = "metadata") -> dict[str, str]:
    pairs = _pairs(value, param)
    for key, item in pairs.items():
        clean_text(item, f"{param}.{key}", max_len=MAX_VALUE)
    return pairs


def attributes(value: Any, param: str = "attributes") -> dict[str, Any]:
    pairs = _pairs(value, param)
    for key, item in pairs.items():
        scalar(item, f"{param}.{key}")
    return pairs


def scalar(value: Any, param: str) -> str | bool | int | float:
    if isinstance(value, str):
        return clean_text(value, param, max_len=MAX_VALUE)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value) or abs(value) > MAX_SAFE_INT:
            raise InvalidRequest(f"'{param}' must be a finite number within ±2^53.", param=param)
        return value
    raise InvalidRequest(f"'{param}' must be a string, a boolean or a number.", param=param)


def filters(value: Any, param: str = "filters", depth: int = 0) -> Any:
    """Walk a filter tree checking every key and value (the SQL builder checks the shape)."""
    if depth > 8 or not isinstance(value, dict):
        raise InvalidRequest("filters must be a comparison or compound filter object.", param=param)
    if isinstance(value.get("filters"), list):
        for part in value["filters"]:
            filters(part, param, depth + 1)
        return value
    if "key" in value:
        clean_text(value["key"], f"{param}.key", max_len=MAX_KEY)
    raw = value.get("value")
    for item in raw if isinstance(raw, list) else [raw] if raw is not None else []:
        scalar(item, f"{param}.value")
    return value


def _pairs(value: Any, param: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"'{param}' must be an object.", param=param)
    if len(value) > MAX_PAIRS:
        raise InvalidRequest(f"'{param}' has more than {MAX_PAIRS} pairs.", param=param)
    for key in value:
        clean_text(key, f"{param} key", max_len=MAX_KEY, allow_empty=False)
    return value
