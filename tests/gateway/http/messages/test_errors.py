"""Anthropic's error envelope for the Messages routes, from the gateway's one error tree."""

from __future__ import annotations

import json

import pytest

from gateway.http.messages.errors import anthropic_body, error_event, error_type, from_openai
from gateway.kernel.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidRequest,
    ModelNotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    ServiceOverloaded,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)


@pytest.mark.parametrize(("err", "kind"), [
    (InvalidRequest("bad", param="x"), "invalid_request_error"),
    (AuthenticationFailed("who?"), "authentication_error"),
    (PermissionDenied("no"), "permission_error"),
    (ModelNotFound("where?"), "not_found_error"),
    (PayloadTooLarge("big"), "request_too_large"),
    (RateLimited("slow down"), "rate_limit_error"),
    (ServiceOverloaded("busy"), "overloaded_error"),
    (UpstreamUnavailable("down"), "overloaded_error"),
    (UpstreamError("broke"), "api_error"),
    (UpstreamTimeout("late"), "api_error"),
    (GatewayError("oops"), "api_error"),
])
def test_every_error_renders_in_anthropic_envelope(err: GatewayError, kind: str) -> None:
    assert json.loads(anthropic_body(err)) == {"type": "error", "error": {"type": kind, "message": err.message}}


def test_other_statuses() -> None:
    assert error_type(405) == "invalid_request_error" and error_type(529) == "overloaded_error"


def test_the_stream_error_event() -> None:
    frame = error_event(502, "broke off")
    assert frame.endswith(b"\n\n")
    name, data = frame.strip().split(b"\n")
    assert name == b"event: error"
    assert json.loads(data[6:]) == {"type": "error", "error": {"type": "api_error", "message": "broke off"}}


def test_an_openai_error_reply_is_re_enveloped() -> None:
    body = b'{"error": {"message": "max_tokens is too large", "type": "invalid_request_error", "code": null}}'
    assert json.loads(from_openai(400, body)) == {
        "type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens is too large"}}
    assert json.loads(from_openai(404, b"<html>"))["error"] == {"type": "not_found_error",
                                                               "message": "The backend answered 404."}
