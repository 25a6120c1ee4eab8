from __future__ import annotations

import orjson

from gateway.kernel.errors import GatewayError, ModelNotFound, PayloadTooLarge, QuotaExceeded, UpstreamTimeout


def test_envelope_has_openai_shape() -> None:
    err = ModelNotFound("no such model", param="model")
    assert err.status == 404
    assert orjson.loads(err.body()) == {
        "error": {
            "message": "no such model",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
    }


def test_statuses_and_types() -> None:
    assert (PayloadTooLarge("x").status, UpstreamTimeout("x").status) == (413, 504)
    quota = QuotaExceeded("spent")
    assert (quota.status, quota.error_type, quota.code) == (429, "insufficient_quota", "insufficient_quota")
    assert GatewayError("x", status=418).status == 418
