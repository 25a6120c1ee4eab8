"""Response objects and items as ``POST /v1/responses`` would store them (valid against OpenAI's
description), and a ``ResponseState`` of a test's own to write them with."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from gateway.kernel.config.sections.responses import ResponsesSettings
from gateway.kernel.config.sections.stores import PostgresSettings
from gateway.services.responses import ResponseState
from gateway.services.stores.postgres import Postgres

Query = Callable[..., Awaitable[list[tuple[Any, ...]]]]  # the ``sql`` fixture


def new_response_id() -> str:
    return "resp_" + secrets.token_hex(24)


def user_message(text: str, item_id: str | None = None) -> dict[str, Any]:
    return {"type": "message", "id": item_id or "msg_" + secrets.token_hex(8), "role": "user", "status": "completed",
            "content": [{"type": "input_text", "text": text}]}


def assistant_message(text: str) -> dict[str, Any]:
    return {"type": "message", "id": "msg_" + secrets.token_hex(8), "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}


def response_object(response_id: str | None = None, *, output: str | None = "Hello!", status: str = "completed",
                    background: bool = False, previous: str | None = None,
                    created_at: int | None = None) -> dict[str, Any]:
    return {
        "id": response_id or new_response_id(), "object": "response", "created_at": created_at or int(time.time()),
        "status": status, "background": background, "error": None, "incomplete_details": None,
        "instructions": None, "max_output_tokens": None, "model": "sim-chat",
        "output": [assistant_message(output)] if output is not None else [],
        "parallel_tool_calls": True, "previous_response_id": previous, "reasoning": {"effort": None, "summary": None},
        "store": True, "temperature": 1.0, "text": {"format": {"type": "text"}}, "tool_choice": "auto",
        "tools": [], "top_p": 1.0, "truncation": "disabled", "metadata": {},
    }


@contextlib.asynccontextmanager
async def opened_state(dsn: str, settings: ResponsesSettings | None = None) -> AsyncIterator[ResponseState]:
    """A ``ResponseState`` of the test's own on ``dsn``, to write rows as the gateway would."""
    pg = await Postgres.open(PostgresSettings(dsn=dsn, pool_max=20))

    async def opened() -> Postgres:
        return pg

    state = ResponseState(opened, settings or ResponsesSettings())
    try:
        await state.open()
        yield state
    finally:
        await state.aclose()
        await pg.aclose()
