"""Simulator errors and their two envelopes.

``SimError`` is the only exception the endpoints raise on purpose; ``render_error`` turns it into
OpenAI's ``{"error": {"message", "type", "param", "code"}}`` or, on ``/v1/messages``, Anthropic's
``{"type": "error", "error": {"type", "message"}}``.
"""

from __future__ import annotations

from enum import Enum

from starlette.responses import Response

from simulator.wire import json_response

_OPENAI_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "permission_denied"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    429: ("requests", "rate_limit_exceeded"),
}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


class Dialect(Enum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


class SimError(Exception):
    """An HTTP error answer; ``retry_after`` (seconds) becomes a ``Retry-After`` header."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.retry_after = retry_after


def dialect_for(path: str) -> Dialect:
    return Dialect.ANTHROPIC if path.rstrip("/") == "/v1/messages" else Dialect.OPENAI


def _openai_body(err: SimError) -> dict[str, object]:
    default = ("server_error", None) if err.status >= 500 else ("invalid_request_error", None)
    kind, code = _OPENAI_TYPES.get(err.status, default)
    return {"error": {"message": err.message, "type": kind, "param": err.param, "code": err.code or code}}


def _anthropic_body(err: SimError) -> dict[str, object]:
    default = "api_error" if err.status >= 500 else "invalid_request_error"
    kind = _ANTHROPIC_TYPES.get(err.status, default)
    return {"type": "error", "error": {"type": kind, "message": err.message}}


def _format_retry_after(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


def render_error(err: SimError, dialect: Dialect) -> Response:
    body = _anthropic_body(err) if dialect is Dialect.ANTHROPIC else _openai_body(err)
    headers = {} if err.retry_after is None else {"retry-after": _format_retry_after(err.retry_after)}
    return json_response(body, status=err.status, headers=headers)
