"""Cache keys: a hash of the tenant, route, model, corpus version and every field that changes the answer.

The body is hashed as canonical JSON (sorted keys) minus the fields that only change the delivery
(``stream``, ``stream_options``), the bookkeeping (``user``, ``metadata``, ``store``, ...) or the
gateway's own extension. The semantic scope is the same hash with the last user turn left out
and its guard signature put in.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

IGNORED_FIELDS = frozenset({
    "stream", "stream_options", "user", "metadata", "store", "service_tier", "llmops",
    "prompt_cache_key", "safety_identifier",
})
_PREFIX = b"llmops.cache/v1"


def _digest(parts: list[Any]) -> str:
    payload = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(_PREFIX + payload, digest_size=20).hexdigest()


def answer_fields(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in IGNORED_FIELDS}


def exact_key(tenant: str, route: str, model: str, corpus: str, body: dict[str, Any]) -> str:
    return _digest([tenant, route, model, corpus, answer_fields(body)])


def semantic_scope(tenant: str, route: str, model: str, corpus: str, body: dict[str, Any],
                   signature: tuple[str, ...]) -> str:
    """Everything but the wording of the last user turn; its significant tokens stay in."""
    fields = answer_fields(body)
    messages = list(fields.get("messages") or ())
    for i in range(len(messages) - 1, -1, -1):
        if isinstance(messages[i], dict) and messages[i].get("role") == "user":
            messages[i] = {**messages[i], "content": None}
            break
    fields["messages"] = messages
    return _digest(["semantic", tenant, route, model, corpus, fields, list(signature)])
