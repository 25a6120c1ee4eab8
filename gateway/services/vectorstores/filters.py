"""OpenAI's attribute filters (ComparisonFilter / CompoundFilter) as a parameterised SQL predicate
over the jsonb column ``attributes``."""

from __future__ import annotations

from typing import Any

import orjson
from psycopg import sql

from gateway.kernel.errors import InvalidRequest

_OPS = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_MAX_DEPTH = 8


def filter_sql(raw: Any, column: sql.Composable, depth: int = 0) -> sql.Composable:
    if depth > _MAX_DEPTH or not isinstance(raw, dict):
        raise InvalidRequest("filters must be a comparison or compound filter object.", param="filters")
    kind = raw.get("type")
    if kind in ("and", "or"):
        parts = raw.get("filters")
        if not isinstance(parts, list) or not parts:
            raise InvalidRequest("compound filters need a non-empty 'filters' array.", param="filters")
        joined = sql.SQL(f" {kind.upper()} ").join(filter_sql(p, column, depth + 1) for p in parts)
        return sql.SQL("({})").format(joined)
    return _comparison(raw, column)


def _comparison(raw: dict[str, Any], column: sql.Composable) -> sql.Composable:
    key, value, kind = raw.get("key"), raw.get("value"), raw.get("type", "eq")
    if not isinstance(key, str) or not key:
        raise InvalidRequest("comparison filters need a 'key'.", param="filters")
    field = sql.SQL("({} -> {})").format(column, sql.Literal(key))
    if kind in ("in", "nin"):
        if not isinstance(value, list):
            raise InvalidRequest(f"'{kind}' filters need an array value.", param="filters")
        items = sql.Literal([orjson.dumps(v).decode() for v in value])
        test = sql.SQL("({} = ANY({}::jsonb[]))").format(field, items)
        return test if kind == "in" else sql.SQL("(NOT coalesce({}, false))").format(test)
    op = _OPS.get(kind) if isinstance(kind, str) else None
    if op is None or not isinstance(value, (str, int, float, bool)):
        raise InvalidRequest(f"unsupported comparison filter {kind!r}.", param="filters")
    literal = sql.SQL("{}::jsonb").format(sql.Literal(orjson.dumps(value).decode()))
    if kind == "ne":
        return sql.SQL("({} IS DISTINCT FROM {})").format(field, literal)
    return sql.SQL("(jsonb_typeof({f}) = jsonb_typeof({v}) AND {f} {op} {v})").format(
        f=field, v=literal, op=sql.SQL(op)
    )
