"""The one error tree of the gateway.

Every failure a client can see is a ``GatewayError``; it knows its HTTP status and how to
render itself in OpenAI's error envelope ``{"error": {"message", "type", "param", "code"}}``::

    GatewayError (500 server_error)
    ├── InvalidRequest (400 invalid_request_error)
    │   ├── UnsupportedCapability (400, code=unsupported_capability)
    │   └── PayloadTooLarge (413)
    ├── AuthenticationFailed (401)
    ├── PermissionDenied (403)
    ├── NotFound (404)
    │   └── ModelNotFound (404, code=model_not_found)
    ├── MethodNotAllowed (405)
    ├── RateLimited (429, type=requests|tokens)
    │   └── QuotaExceeded (429, insufficient_quota)
    ├── ServiceOverloaded (429 / 503)
    └── UpstreamError (502 api_error)
        ├── UpstreamUnavailable (503)
        └── UpstreamTimeout (504)

Foreign exceptions are translated at the boundary that catches them (the backend adapter,
the store), never deeper.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson


class GatewayError(Exception):
    status: int = 500
    error_type: str = "server_error"
    default_code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.headers: dict[str, str] = dict(headers or {})
        if status is not None:
            self.status = status

    def envelope(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def body(self) -> bytes:
        return orjson.dumps(self.envelope())


class InvalidRequest(GatewayError):
    status = 400
    error_type = "invalid_request_error"


class UnsupportedCapability(InvalidRequest):
    default_code = "unsupported_capability"


class PayloadTooLarge(InvalidRequest):
    status = 413
    default_code = "request_too_large"


class AuthenticationFailed(GatewayError):
    status = 401
    error_type = "invalid_request_error"
    default_code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    error_type = "permission_error"
    default_code = "policy_denied"


class NotFound(GatewayError):
    status = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class ModelNotFound(NotFound):
    default_code = "model_not_found"


class MethodNotAllowed(GatewayError):
    status = 405
    error_type = "invalid_request_error"
    default_code = "method_not_allowed"


class RateLimited(GatewayError):
    status = 429
    error_type = "requests"
    default_code = "rate_limit_exceeded"


class QuotaExceeded(RateLimited):
    error_type = "insufficient_quota"
    default_code = "insufficient_quota"


class ServiceOverloaded(GatewayError):
    status = 503
    error_type = "server_error"
    default_code = "overloaded"


class UpstreamError(GatewayError):
    status = 502
    error_type = "api_error"
    default_code = "upstream_error"


class UpstreamUnavailable(UpstreamError):
    status = 503
    default_code = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    status = 504
    default_code = "upstream_timeout"


# How a route renders an error body: OpenAI's envelope unless its door says otherwise
# (the Anthropic Messages routes render Anthropic's, gateway/http/messages/errors.py).
ErrorBody = Callable[[GatewayError], bytes]


def openai_body(err: GatewayError) -> bytes:
    return err.body()
