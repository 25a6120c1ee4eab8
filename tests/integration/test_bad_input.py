"""Every bad input gets OpenAI's error envelope with the right status, never a stack trace."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import GatewayFactory
from tests.support.configs import sim_config
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.integration

GOOD = {"model": "sim-chat", "messages": [{"role": "user", "content": "hi"}]}


def envelope(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"] and "Traceback" not in resp.text
    assert resp.headers["x-request-id"]
    return dict(body["error"])


@pytest.fixture(scope="module")
def http(gateway: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=gateway.url, timeout=10)


def test_invalid_json(http: httpx.Client) -> None:
    err = envelope(http.post("/v1/chat/completions", content=b"{not json"), 400)
    assert err["type"] == "invalid_request_error" and err["code"] == "invalid_json"


def test_body_that_is_not_an_object(http: httpx.Client) -> None:
    envelope(http.post("/v1/chat/completions", json=[1, 2]), 400)


def test_empty_body(http: httpx.Client) -> None:
    envelope(http.post("/v1/chat/completions", content=b""), 400)


def test_missing_field_names_the_param(http: httpx.Client) -> None:
    err = envelope(http.post("/v1/chat/completions", json={"model": "sim-chat"}), 400)
    assert err["param"] == "messages"


def test_mistyped_field_names_the_param(http: httpx.Client) -> None:
    err = envelope(http.post("/v1/chat/completions", json={**GOOD, "temperature": "hot"}), 400)
    assert err["param"] == "temperature"
    err = envelope(http.post("/v1/chat/completions", json={**GOOD, "messages": [{"role": "robot"}]}), 400)
    assert err["param"] == "messages[0].role"
    err = envelope(http.post("/v1/embeddings", json={"model": "sim-embed", "input": 5}), 400)
    assert err["param"] == "input"


def test_out_of_range_value(http: httpx.Client) -> None:
    err = envelope(http.post("/v1/chat/completions", json={**GOOD, "n": 0}), 400)
    assert err["param"] == "n"


def test_unknown_model(http: httpx.Client) -> None:
    err = envelope(http.post("/v1/chat/completions", json={**GOOD, "model": "gpt-99"}), 404)
    assert err["code"] == "model_not_found" and err["param"] == "model"


def test_unsupported_endpoint(http: httpx.Client) -> None:
    err = envelope(http.post("/v1/fine_tuning/jobs", json={}), 404)
    assert err["code"] == "unknown_url"


def test_wrong_method(http: httpx.Client) -> None:
    err = envelope(http.get("/v1/chat/completions"), 405)
    assert err["code"] == "method_not_allowed"
    envelope(http.delete("/v1/models"), 405)


def test_transcription_without_file(http: httpx.Client) -> None:
    err = envelope(http.post("/v1/audio/transcriptions", data={"model": "sim-stt"}, files={"x": ("a", b"1")}), 400)
    assert err["param"] == "file"


def test_transcription_not_multipart(http: httpx.Client) -> None:
    envelope(http.post("/v1/audio/transcriptions", json={"model": "sim-stt"}), 400)


def test_oversized_body_declared_and_chunked(sim: ServerProcess, start_gateway: GatewayFactory) -> None:
    small = start_gateway(sim_config(sim.url, server={"max_body_bytes": 2048}))
    with httpx.Client(base_url=small.url, timeout=10) as client:
        big = {**GOOD, "messages": [{"role": "user", "content": "x" * 5000}]}
        err = envelope(client.post("/v1/chat/completions", json=big), 413)
        assert err["code"] == "request_too_large"

        def chunks() -> Any:
            for _ in range(10):
                yield b" " * 1000
        chunked = client.post("/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"})
        envelope(chunked, 413)
        assert client.post("/v1/chat/completions", json=GOOD).status_code == 200
        refused = client.post("/v1/messages", json={"model": "sim-chat", "max_tokens": 5,
                                                    "messages": [{"role": "user", "content": "x" * 5000}]})
        assert anthropic_envelope(refused, 413)["type"] == "request_too_large"


def anthropic_envelope(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["type"] == "error" and set(body["error"]) == {"type", "message"}, body
    assert body["error"]["message"] and resp.headers["x-request-id"]
    return dict(body["error"])


def test_messages_routes_answer_routing_errors_in_anthropics_envelope(http: httpx.Client) -> None:
    assert anthropic_envelope(http.get("/v1/messages"), 405)["type"] == "invalid_request_error"
    assert anthropic_envelope(http.post("/v1/messages/batches/x", json={}), 404)["type"] == "not_found_error"
    assert anthropic_envelope(http.get("/v1/messages/count_tokens"), 405)["type"] == "invalid_request_error"
    envelope(http.post("/v1/messagesx", json={}), 404)  # not a Messages path: OpenAI's envelope
