"""JSON in and out of PostgreSQL, and item ids.

``jsonb`` cannot hold U+0000. Client input is refused before it gets here (``gateway/http/validate.py``);
what the gateway itself writes (a model's output, an upstream's error text) is stored with every NUL
replaced by U+FFFD, so a stray byte from a backend never turns into a failed write.
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson
from psycopg.types.json import Jsonb

_NUL = b"\\u0000"
ITEM_PREFIXES = {"message": "msg", "function_call": "fc", "function_call_output": "fco", "reasoning": "rs"}


def dumps(value: Any) -> str:
    data = orjson.dumps(value)
    if _NUL in data:
        data = orjson.dumps(without_nul(value))
    return data.decode()


def jsonb(value: Any) -> Jsonb:
    return Jsonb(value, dumps=dumps)


def loads(text: str | bytes | None) -> Any:
    return None if text is None else orjson.loads(text)


def without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    return value


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


def new_item_id(kind: str) -> str:
    return new_id(ITEM_PREFIXES.get(kind, "item"))


def with_ids(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Items as given, each with an ``id`` (a new one, by its type, where it had none)."""
    return [item if isinstance(item.get("id"), str) and item["id"] else
            {"id": new_item_id(str(item.get("type", "message"))), **item} for item in items]
