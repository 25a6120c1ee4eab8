"""Pure-ASGI middleware for transport concerns: request ids, access logs, body limits."""

from middleware.transport.access_log import AccessLogMiddleware
from middleware.transport.body_limit import BodyLimitMiddleware
from middleware.transport.errors import ErrorMiddleware
from middleware.transport.request_id import RequestIdMiddleware

__all__ = ["AccessLogMiddleware", "BodyLimitMiddleware", "ErrorMiddleware", "RequestIdMiddleware"]
