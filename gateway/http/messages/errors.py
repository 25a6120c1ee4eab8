"""Anthropic's error envelope ``{"type": "error", "error": {"type", "message"}}`` for the Messages routes.

The type follows the status, as Anthropic's API does:

======  =========================  ======  ===================
status  type                       status  type
======  =========================  ======  ===================
400     invalid_request_error      413     request_too_large
401     authentication_error       429     rate_limit_error
403     permission_error           503     overloaded_error
404     not_found_error            529     overloaded_error
other   api_error (5xx), invalid_request_error (4xx)
======  =========================  ======  ===================

The same document is the ``data`` of the ``event: error`` that ends a stream that fails after it started.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.kernel.errors import GatewayError

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def error_type(status: int) -> str:
    return _TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")


def envelope(status: int, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type(status), "message": message}}


def anthropic_body(err: GatewayError) -> bytes:
    """The body of an error response on a Messages route (a door's ``errors`` renderer)."""
    return orjson.dumps(envelope(err.status, err.message))


def error_event(status: int, message: str) -> bytes:
    """An ``event: error`` SSE event: how a stream that already started says it failed."""
    return b"event: error\ndata: " + orjson.dumps(envelope(status, message)) + b"\n\n"


def from_openai(status: int, body: bytes) -> bytes:
    """An error reply in OpenAI's envelope (a backend's 400 passed through the chain) in Anthropic's."""
    try:
        doc: Any = orjson.loads(body)
        message = str(doc["error"]["message"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        message = f"The backend answered {status}."
    return orjson.dumps(envelope(status, message))


SHUTTING_DOWN = error_event(503, "The gateway is shutting down; the stream was ended before its answer was complete.")
