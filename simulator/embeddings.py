"""``POST /v1/embeddings``: deterministic unit-norm vectors from a hash of each input."""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from typing import Any

from starlette.responses import Response

from simulator.pipeline import SimCall
from simulator.streaming import json_answer
from simulator.text import count_tokens
from simulator.validate import bad, opt_int, opt_str, req_str

DEFAULT_DIMENSIONS = 384
MAX_DIMENSIONS = 8192
MAX_INPUTS = 2048


def embed(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """Unit-norm vector whose components come from SHAKE-256(text); same text -> same vector."""
    raw = hashlib.shake_256(text.encode()).digest(4 * dimensions)
    values = [v / 2**31 - 1.0 for v in struct.unpack(f"<{dimensions}I", raw)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def encode_base64(vector: list[float]) -> str:
    """Little-endian float32, base64 (what ``encoding_format: base64`` returns)."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def _item_text(item: Any) -> tuple[str, int]:
    if isinstance(item, str):
        return item, count_tokens(item)
    if isinstance(item, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in item):
        return " ".join(map(str, item)), len(item)
    raise bad("input", "'input' items must be strings or arrays of token ids")


def parse_inputs(value: Any) -> list[tuple[str, int]]:
    """str | list[str] | list[int] | list[list[int]] -> [(text, token_count)]."""
    if isinstance(value, str) or (
        isinstance(value, list) and value and all(isinstance(i, int) for i in value)
    ):
        return [_item_text(value)]
    if isinstance(value, list) and 0 < len(value) <= MAX_INPUTS:
        return [_item_text(item) for item in value]
    raise bad("input", f"'input' must be a string or a non-empty array of at most {MAX_INPUTS} items")


def _encoding(body: dict[str, Any]) -> str:
    encoding = opt_str(body, "encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise bad("encoding_format", "'encoding_format' must be 'float' or 'base64'")
    return encoding


async def create_embeddings(call: SimCall) -> Response:
    model = req_str(call.body, "model")
    inputs = parse_inputs(call.body.get("input"))
    dims = opt_int(call.body, "dimensions", DEFAULT_DIMENSIONS, 1, MAX_DIMENSIONS) or DEFAULT_DIMENSIONS
    b64 = _encoding(call.body) == "base64"
    data = []
    for index, (text, _) in enumerate(inputs):
        vector = embed(text, dims)
        data.append(
            {"object": "embedding", "index": index, "embedding": encode_base64(vector) if b64 else vector}
        )
    tokens = sum(n for _, n in inputs)
    body = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return json_answer(body, call.overrides)
