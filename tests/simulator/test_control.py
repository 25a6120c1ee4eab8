from typing import Any

import httpx

from simulator import Behaviour, build_app


def test_requests_are_recorded_and_cleared(http: httpx.Client) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "remember me"}], "extra_field": 1}
    http.post("/v1/chat/completions", json=body, headers={"x-trace": "abc"})
    http.post(
        "/v1/audio/transcriptions", data={"model": "stt"}, files={"file": ("a.wav", b"1234", "audio/wav")}
    )
    log: list[dict[str, Any]] = http.get("/_sim/requests").json()["data"]
    assert [(r["method"], r["path"]) for r in log] == [
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/audio/transcriptions"),
    ]
    assert log[0]["body"] == body and log[0]["headers"]["x-trace"] == "abc"
    assert log[1]["form"] == {
        "model": "stt",
        "file": {"filename": "a.wav", "size": 4, "content_type": "audio/wav"},
    }
    assert http.delete("/_sim/requests").status_code == 200
    assert http.get("/_sim/requests").json()["data"] == []


def test_health(http: httpx.Client) -> None:
    assert http.get("/_sim/health").json() == {"status": "ok", "name": "test"}


async def test_config_changes_defaults() -> None:
    transport = httpx.ASGITransport(app=build_app(Behaviour(name="cfg")))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as http:
        changed = await http.post("/_sim/config", json={"status": 418, "retry_after": 1.5, "models": ["x"]})
        assert changed.json()["status"] == 418
        failed = await http.get("/v1/models")
        assert failed.status_code == 418 and failed.headers["retry-after"] == "1.5"
        await http.post("/_sim/config", json={"status": None})
        assert [m["id"] for m in (await http.get("/v1/models")).json()["data"]] == ["x"]
        rejected = await http.post("/_sim/config", json={"error_rate": 5})
        assert rejected.status_code == 400 and rejected.json()["error"]["param"] == "error_rate"
        assert (await http.get("/_sim/config")).json()["error_rate"] == 0.0
