"""The run of one background response: the ``work`` of the ``BackgroundRunner``, in any replica.

From what ``background.py`` queued, the caller and the request become a ``RequestContext`` again
(route ``responses``, streamed); the history is prepended and files by id are inlined as for a
request in the foreground, and the whole chain runs (grants, policy, limits and budgets, retrieval,
...). Each event of the reply's stream goes to ``emit`` (stored, numbered, resumable); the Response
keeps the id and creation time it was queued with (``IDENTITY``). A refusal or a failure anywhere ends
it ``failed`` with the error's message. The conversation, if any, gets the turn before the final
event is stored, as in the foreground.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from gateway.http.openai_json import resolve_model
from gateway.http.parsing import validate
from gateway.http.responses import run_finalizers
from gateway.http.responses_api.background import caller_of
from gateway.http.responses_api.files import InputFiles
from gateway.http.responses_api.state import ResponseState as History
from gateway.kernel.context import Reply, ReplyStream, RequestContext
from gateway.kernel.errors import GatewayError, NotFound
from gateway.kernel.extension import parse_extension
from gateway.kernel.response_state import StoredResponse
from gateway.kernel.responses import IDENTITY, RESPONSE, ResponseIdentity, as_items
from gateway.kernel.schemas import ResponsesRequest
from gateway.kernel.sse import SseSplitter, data_of, json_object
from gateway.services.responses.runner import Emit
from gateway.services.responses.state import ResponseState
from gateway.services.responses_wire.responses_object import TERMINAL

if TYPE_CHECKING:
    from gateway.wiring import Gateway

NO_REQUEST = "This response was queued without its request, so it cannot run."
CUT_SHORT = "The backend ended the stream before the answer was complete."


class BackgroundWorker:
    def __init__(self, gateway: Gateway, files: InputFiles, history: History, state: ResponseState) -> None:
        self._gateway = gateway
        self._files = files
        self._history = history
        self._state = state

    async def __call__(self, tenant: str, response_id: str, emit: Emit) -> dict[str, Any]:
        stored = await self._state.responses.get(tenant, response_id)
        if stored is None:  # deleted since it was queued: there is nothing left to finish
            raise NotFound(f"Response with id '{response_id}' not found.")
        job = await self._state.queue.request(tenant, response_id)
        if job is None:
            return failed(stored.response, NO_REQUEST)
        try:
            ctx = await self._context(job, stored)
            reply = await self._gateway.handler(ctx)
        except GatewayError as err:
            return failed(stored.response, err.message, err.status)
        try:
            final = await self._relay(ctx, reply, emit, stored)
        except GatewayError as err:
            final = failed(stored.response, err.message, err.status)
        finally:
            await run_finalizers(ctx)
        self._gateway.log.info("background_response", response_id=response_id, tenant=tenant, model=ctx.model,
                               backend=ctx.backend, status=final.get("status"))
        return final

    async def _context(self, job: dict[str, Any], stored: StoredResponse) -> RequestContext:
        body: dict[str, Any] = {**job["body"], "stream": True}
        typed = validate(body, ResponsesRequest)
        ctx = RequestContext(str(job.get("request_id") or stored.id), "responses", typed.model, body,
                             dict(job.get("headers") or {}), True, principal=caller_of(job.get("principal")),
                             extension=parse_extension(body), requested_model=typed.model)
        resolve_model(ctx, self._gateway)
        body["input"] = await self._files.inline(ctx, await self._history.context(stored.tenant, typed,
                                                                                   as_items(body.get("input"))))
        ctx.set(IDENTITY, ResponseIdentity(stored.id, stored.created_at))
        return ctx

    async def _relay(self, ctx: RequestContext, reply: Reply, emit: Emit, stored: StoredResponse) -> dict[str, Any]:
        if reply.stream is None:
            return await self._whole(ctx, reply, stored)
        events = _events(reply.stream)
        try:
            async for event in events:
                kind = event.get("type")
                if kind in TERMINAL and isinstance(event.get("response"), dict):
                    final = await self._settle(stored, event["response"])
                    await emit({**event, "response": final})
                    return final
                if kind == "error" or (kind is None and isinstance(event.get("error"), dict)):
                    return failed(stored.response, _message_of(event) or CUT_SHORT)
                await emit(event)
        finally:
            await events.aclose()
        return failed(stored.response, CUT_SHORT)

    async def _whole(self, ctx: RequestContext, reply: Reply, stored: StoredResponse) -> dict[str, Any]:
        """A reply that is not a stream: the Response (emitted by the runner as the final event), or an error."""
        doc = _json(reply.body)
        if reply.status == 200 and isinstance(doc.get("output"), list):
            return await self._settle(stored, ctx.get(RESPONSE) or doc)
        message = _message_of(doc) or f"The request failed with status {reply.status}."
        return failed(stored.response, message, reply.status)

    async def _settle(self, stored: StoredResponse, response: dict[str, Any]) -> dict[str, Any]:
        final = {**response, "id": stored.id, "created_at": stored.created_at, "background": True}
        if stored.conversation_id is not None:
            await self._state.conversations.append(stored.tenant, stored.conversation_id,
                                                   [*stored.input_items, *(final.get("output") or ())])
        return final


def failed(response: dict[str, Any], message: str, status: int = 500) -> dict[str, Any]:
    """``response`` failed with ``message`` (OpenAI's codes: a rate limit, else a server error)."""
    code = "rate_limit_exceeded" if status == 429 else "server_error"
    return {**response, "status": "failed", "error": {"code": code, "message": message}}


async def _events(chunks: ReplyStream) -> AsyncGenerator[dict[str, Any], None]:
    """The JSON object of every event of a framed SSE stream (closed at the end)."""
    split = SseSplitter()
    try:
        async for chunk in chunks:
            for frame in split.feed(chunk):
                doc = json_object(data_of(frame))
                if doc:
                    yield doc
    finally:
        await chunks.aclose()


def _json(data: bytes) -> dict[str, Any]:
    return json_object(data.strip()) or {}


def _message_of(doc: dict[str, Any]) -> str | None:
    error = doc.get("error")
    message = error.get("message") if isinstance(error, dict) else doc.get("message")
    return message if isinstance(message, str) and message else None
