"""Build a JSON value that satisfies a JSON Schema, with typed, deterministic placeholders.

Used for tool-call arguments and ``response_format: json_schema``. Strings are taken, in order,
from the quoted text of the prompt when there is any; local ``$ref``s (``#/$defs/...``) resolve.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from simulator.text import digest

MAX_DEPTH = 8
_FORMATS = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "time": "00:00:00",
    "email": "sim@example.com",
    "uri": "https://example.com/sim",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


@dataclass(slots=True)
class _Ctx:
    root: dict[str, Any]
    quotes: Iterator[str]


def _resolve(schema: dict[str, Any], ctx: _Ctx) -> dict[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    node: Any = ctx.root
    for part in ref[2:].split("/"):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def _type_of(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        return str(kinds[0]) if kinds else "null"
    if isinstance(kind, str):
        return kind
    return "object" if "properties" in schema else None


def _string(schema: dict[str, Any], name: str, ctx: _Ctx) -> str:
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS:
        return _FORMATS[fmt]
    value = next(ctx.quotes, None) or f"sim-{name or 'value'}"
    minimum = schema.get("minLength")
    return value.ljust(minimum, "x") if isinstance(minimum, int) else value


def _number(schema: dict[str, Any], name: str, integral: bool) -> int | float:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    base = 1 + digest("num", name)[0] % 9
    value = max(base, low + 1) if isinstance(low, int | float) else base
    high = schema.get("maximum")
    if isinstance(high, int | float) and value > high:
        value = high
    return int(value) if integral else float(value)


def _object(schema: dict[str, Any], ctx: _Ctx, depth: int) -> dict[str, Any]:
    props = schema.get("properties")
    if not isinstance(props, dict):
        return {}
    return {key: _value(sub, key, ctx, depth + 1) for key, sub in props.items() if isinstance(sub, dict)}


def _array(schema: dict[str, Any], name: str, ctx: _Ctx, depth: int) -> list[Any]:
    items = schema.get("items")
    if not isinstance(items, dict):
        return []
    low = schema.get("minItems")
    count = low if isinstance(low, int) and low > 1 else 1
    return [_value(items, name, ctx, depth + 1) for _ in range(count)]


def _choice(schema: dict[str, Any]) -> tuple[bool, Any]:
    for key in ("const", "default"):
        if key in schema:
            return True, schema[key]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return True, enum[0]
    return False, None


def _value(schema: dict[str, Any], name: str, ctx: _Ctx, depth: int) -> Any:
    schema = _resolve(schema, ctx)
    found, fixed = _choice(schema)
    if found or depth > MAX_DEPTH:
        return fixed
    for combinator in ("anyOf", "oneOf", "allOf"):
        branches = [
            b for b in schema.get(combinator) or [] if isinstance(b, dict) and b.get("type") != "null"
        ]
        if branches:
            return _value(branches[0], name, ctx, depth)
    return _by_type(_type_of(schema), schema, name, ctx, depth)


def _by_type(kind: str | None, schema: dict[str, Any], name: str, ctx: _Ctx, depth: int) -> Any:
    if kind == "object":
        return _object(schema, ctx, depth)
    if kind == "array":
        return _array(schema, name, ctx, depth)
    if kind in ("integer", "number"):
        return _number(schema, name, kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string(schema, name, ctx)


def build_value(schema: dict[str, Any], quotes: list[str]) -> Any:
    """A value for ``schema``; fills every listed property (so ``required`` is always satisfied)."""
    return _value(schema, "", _Ctx(schema, iter(quotes)), 0)
