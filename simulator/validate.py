"""Small typed readers for request bodies; each raises ``SimError(400, param=key)`` on bad input."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from simulator.errors import SimError


def bad(param: str, message: str) -> SimError:
    return SimError(400, message, param=param)


def req_str(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise bad(key, f"'{key}' is a required property and must be a non-empty string")
    return value


def opt_str(body: Mapping[str, Any], key: str, default: str) -> str:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise bad(key, f"'{key}' must be a string")
    return value


def opt_int(body: Mapping[str, Any], key: str, default: int | None, lo: int, hi: int) -> int | None:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise bad(key, f"'{key}' must be an integer between {lo} and {hi}")
    return value


def opt_bool(body: Mapping[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad(key, f"'{key}' must be a boolean")
    return value


def opt_dict(body: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad(key, f"'{key}' must be an object")
    return value


def req_list(body: Mapping[str, Any], key: str) -> list[Any]:
    value = body.get(key)
    if not isinstance(value, list) or not value:
        raise bad(key, f"'{key}' is a required property and must be a non-empty array")
    return value


def stop_list(body: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = body.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return tuple(s for s in value if s)
    raise bad(key, f"'{key}' must be a string or an array of strings")
