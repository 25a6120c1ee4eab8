import httpx
import pytest

from simulator import Behaviour, build_app


@pytest.fixture
async def http() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=build_app(Behaviour(name="unit"))), base_url="http://sim"
    )


async def test_unknown_route_and_method_use_the_openai_envelope(http: httpx.AsyncClient) -> None:
    missing = await http.post("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {
            "message": "Invalid URL (POST /v1/nothing-here)",
            "type": "invalid_request_error",
            "param": None,
            "code": "not_found",
        }
    }
    assert (await http.get("/v1/chat/completions")).status_code == 405
    assert missing.headers["x-sim-name"] == "unit"


async def test_invalid_json_and_missing_fields_are_400(http: httpx.AsyncClient) -> None:
    broken = await http.post("/v1/chat/completions", content=b"{not json")
    assert broken.status_code == 400 and broken.json()["error"]["type"] == "invalid_request_error"
    no_messages = await http.post("/v1/chat/completions", json={"model": "m"})
    assert no_messages.json()["error"]["param"] == "messages"
    bad_n = await http.post(
        "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 0}
    )
    assert bad_n.json()["error"]["param"] == "n"
