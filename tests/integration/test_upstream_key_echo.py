"""A backend whose error quotes the gateway's own upstream key (raw, or masked as OpenAI does) on any
status: the key reaches neither the client nor the gateway's logs, and useful 400-class words still do."""

from __future__ import annotations

import http.server
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from tests.conftest import GatewayFactory
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.integration

KEYS = {"echo-openai": "sk-proj-Q7vXk2LmN9pRt4WzY8bC3dFh6JsA1gKe5uHo0iTq-QxZw",  # random-looking: no 8 of its
        "echo-anthropic": "sk-ant-api03-Z4mKp8Tq2WvN6rYb1XcL9dFg3HjS7aE5uIo0-VbNm"}  # characters occur by chance
STATUSES = (400, 404, 422, 429, 500, 502, 503)
RELAYED = (400, 404, 422)  # 400-class answers in an error envelope are relayed, status and words
USEFUL = "max_tokens is too large for this model"


@dataclass
class EchoUpstream:
    """An upstream that answers ``status=NNN`` (found in the request) with an error quoting the key it got."""

    url: str = ""
    hits: list[tuple[str, int]] = field(default_factory=list)


def _quote(key: str) -> str:
    return f"Incorrect API key provided: {key[:6]}***{key[-4:]} (you sent {key}). {USEFUL}."


def _handler(state: EchoUpstream) -> type[http.server.BaseHTTPRequestHandler]:
    class Echo(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
            found = re.search(r"status=(\d{3})", raw)
            status = int(found.group(1)) if found else 400
            key = self.headers.get("x-api-key") or (self.headers.get("authorization") or "").removeprefix("Bearer ")
            state.hits.append((self.path, status))
            err = {"type": "invalid_request_error", "message": _quote(key)}
            doc = {"type": "error", "error": err} if self.path.startswith("/anthropic") else {
                "error": {**err, "param": None, "code": None}}
            self._answer(status, json.dumps(doc).encode())

        def do_GET(self) -> None:
            self._answer(404, b"{}")

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    return Echo


@pytest.fixture(scope="module")
def upstream() -> Iterator[EchoUpstream]:
    state = EchoUpstream()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def gateway(upstream: EchoUpstream, start_gateway: GatewayFactory) -> ServerProcess:
    return start_gateway({
        "backends": [
            {"name": "oai", "type": "openai", "base_url": f"{upstream.url}/openai", "api_key": KEYS["echo-openai"]},
            {"name": "ant", "type": "anthropic", "base_url": f"{upstream.url}/anthropic",
             "api_key": KEYS["echo-anthropic"]},
        ],
        "models": [{"name": "echo-openai", "deployments": [{"backend": "oai"}]},
                   {"name": "echo-anthropic", "deployments": [{"backend": "ant"}]}],
        "routing": {"max_attempts": 1, "circuit": {"failures": 1000}, "health": {"interval_s": 0},
                    "retry_after_max_s": 0},
    })


def leaks(text: str, key: str) -> list[str]:
    """Every piece of ``key`` found in ``text``: a run of 8 of its characters, its masked form, its tail."""
    runs = [key[i : i + 8] for i in range(len(key) - 7) if key[i : i + 8] in text]
    masked = [form for form in (f"{key[:6]}***{key[-4:]}", key[-4:]) if form in text]
    return runs + masked


@pytest.mark.parametrize("model", sorted(KEYS))
def test_an_upstream_error_quoting_the_key_is_scrubbed_on_every_status(
    model: str, upstream: EchoUpstream, gateway: ServerProcess
) -> None:
    key = KEYS[model]
    for status in STATUSES:
        before = len(upstream.hits)
        resp = httpx.post(f"{gateway.url}/v1/chat/completions", timeout=30, json={
            "model": model, "messages": [{"role": "user", "content": f"status={status}"}]})
        assert upstream.hits[before:] == [(upstream.hits[-1][0], status)], "the upstream answered this request"
        assert resp.status_code >= 400 and set(resp.json()["error"]) == {"message", "type", "param", "code"}
        assert leaks(resp.text, key) == [], f"{model} {status}: {resp.text}"
        if status in RELAYED:
            assert resp.status_code == status and USEFUL in resp.json()["error"]["message"], resp.text
    assert leaks(gateway.logs(), key) == []
