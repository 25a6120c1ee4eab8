"""The pure parts of background mode: the caller kept with a job and rebuilt for its run, a failed
Response's code, and the events read back off a framed stream (the runs themselves: the integration
tests in ``tests/integration/test_background_responses.py``)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest

from gateway.http.responses_api.background import caller_of, caller_record
from gateway.http.responses_api.worker import _events, failed
from gateway.kernel.context import Principal
from tests.support.openapi import validate
from tests.support.response_objects import response_object


def test_the_caller_survives_the_round_trip_through_json() -> None:
    caller = Principal("team-a", "key-1", ("admin",), {"sub": "u1"}, {"region": "eu"}, ("sim-*",), 10, 1000, 2.5)
    assert caller_of(caller_record(caller)) == caller
    assert caller_of(caller_record(None)) is None
    assert "secret" not in str(caller_record(caller)) and set(caller_record(caller) or ()) == {
        "tenant", "key_id", "roles", "claims", "metadata", "models", "rpm", "tpm", "budget_usd"}


@pytest.mark.parametrize(("status", "code"), [(429, "rate_limit_exceeded"), (403, "server_error"),
                                              (500, "server_error")])
def test_a_failed_response_has_one_of_openais_codes(status: int, code: str) -> None:
    response = failed(response_object(status="in_progress", output=None, background=True), "No.", status)
    validate(response, "Response")
    assert response["status"] == "failed" and response["error"] == {"code": code, "message": "No."}


async def test_events_are_read_across_chunk_boundaries_and_the_stream_closed() -> None:
    closed = []

    async def chunks() -> AsyncGenerator[bytes, None]:
        try:
            yield b'event: a\ndata: {"type": "a"}\n\nevent: b\ndata: {"ty'
            yield b'pe": "b"}\n\n: keep-alive\n\ndata: [DONE]\n\ndata: {"error": {"message": "x"}}\n\n'
        finally:
            closed.append(True)

    assert [e async for e in _events(chunks())] == [{"type": "a"}, {"type": "b"}, {"error": {"message": "x"}}]
    assert closed == [True]
