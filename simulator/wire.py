"""JSON wire helpers shared by every simulator endpoint (orjson in, orjson out)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any, TypeAlias

import orjson
from starlette.responses import Response

JSONObject: TypeAlias = dict[str, Any]


def dumps(value: object) -> bytes:
    """Serialise compactly (the sim is on the benchmark hot path)."""
    return orjson.dumps(value)


def json_response(value: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(dumps(value), status_code=status, headers=headers, media_type="application/json")


def new_id(prefix: str) -> str:
    """A fresh opaque id such as ``chatcmpl-1f3a...``: ids may vary between identical requests."""
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())
