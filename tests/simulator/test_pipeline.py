import time
from typing import Any

import httpx
import openai
import pytest

from simulator import Behaviour, build_app

USER: Any = [{"role": "user", "content": "Hello"}]


def test_forced_status_with_retry_after(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(
            model="m", messages=USER, extra_headers={"x-sim-status": "429", "x-sim-retry-after": "3"}
        )
    assert info.value.response.headers["retry-after"] == "3"
    assert info.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="m", messages=USER, extra_body={"sim": {"status": 503}})
    assert err.value.status_code == 503
    assert err.value.body == {
        "message": "Simulated error (status 503)",
        "type": "server_error",
        "param": None,
        "code": None,
    }


def test_ttft_delays_the_answer(client: openai.OpenAI) -> None:
    start = time.monotonic()
    client.chat.completions.create(model="m", messages=USER, extra_headers={"x-sim-ttft-ms": "300"})
    assert time.monotonic() - start >= 0.3


def test_itl_paces_stream_chunks(client: openai.OpenAI) -> None:
    start = time.monotonic()
    chunks = list(
        client.chat.completions.create(
            model="m", messages=USER, stream=True, extra_body={"sim": {"itl_ms": 20}}
        )
    )
    assert time.monotonic() - start >= 0.02 * (len(chunks) - 1)


def test_stream_disconnect_breaks_the_stream(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="m", messages=USER, stream=True, extra_headers={"x-sim-disconnect-after": "3"}
    )
    received = []
    with pytest.raises((openai.APIError, httpx.HTTPError)):
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 3


def test_stream_disconnect_at_raw_http_level(http: httpx.Client) -> None:
    body = {"model": "m", "messages": USER, "stream": True, "sim": {"disconnect_after": 2}}
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        with pytest.raises(httpx.RemoteProtocolError):
            for _ in response.iter_bytes():
                pass


def test_non_stream_disconnect_truncates_the_body(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=USER, extra_body={"sim": {"disconnect_after": 0}})


async def asgi_client(behaviour: Behaviour) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(behaviour)), base_url="http://sim")


async def test_api_key_is_required_when_configured() -> None:
    async with await asgi_client(Behaviour(api_key="s3cret")) as http:
        body = {"model": "m", "messages": USER}
        denied = await http.post("/v1/chat/completions", json=body)
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "invalid_api_key"
        bearer = await http.post(
            "/v1/chat/completions", json=body, headers={"authorization": "Bearer s3cret"}
        )
        anthropic_style = await http.get("/v1/models", headers={"x-api-key": "s3cret"})
        assert (bearer.status_code, anthropic_style.status_code) == (200, 200)


async def test_error_rate_fails_an_exact_share() -> None:
    async with await asgi_client(Behaviour(error_rate=0.5, error_status=502)) as http:
        codes = [(await http.get("/v1/models")).status_code for _ in range(6)]
    assert codes == [200, 502, 200, 502, 200, 502]
