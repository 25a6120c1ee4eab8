"""One batch line through the SAME chain as the interactive endpoints, as the batch's creator.

Built like a request in the foreground (``openai_json.py``, ``responses_api/endpoint.py``): the body is
checked with the endpoint's schema, the model resolved, the whole chain runs (grants, policy, limits
and budgets of the creator's tenant, retrieval, cache, routing), finalizers included (usage, spend).
A refusal anywhere is the line's result with the status and envelope the client would have had.
Lines never stream; a ``/v1/responses`` line is not stored and may not be ``background``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from gateway.http.openai_json import resolve_model
from gateway.http.parsing import validate
from gateway.http.responses import run_finalizers
from gateway.http.responses_api.background import caller_of
from gateway.http.responses_api.endpoint import fresh_copy
from gateway.http.responses_api.files import InputFiles
from gateway.http.responses_api.items import check_request
from gateway.http.responses_api.state import ResponseState as History
from gateway.kernel.context import Reply, RequestContext, Route, tenant_of
from gateway.kernel.errors import GatewayError, InvalidRequest
from gateway.kernel.extension import parse_extension
from gateway.kernel.responses import RESPONSE, as_items
from gateway.kernel.schemas import ChatCompletionRequest, EmbeddingRequest, ResponsesRequest

if TYPE_CHECKING:
    from gateway.wiring import Gateway

ROUTES: dict[str, tuple[Route, type[Any]]] = {
    "/v1/chat/completions": ("chat", ChatCompletionRequest),
    "/v1/embeddings": ("embeddings", EmbeddingRequest),
    "/v1/responses": ("responses", ResponsesRequest),
}
NO_HEADERS: dict[str, str] = {}


class BatchLines:
    def __init__(self, gateway: Gateway, files: InputFiles, history: History) -> None:
        self._gateway = gateway
        self._files = files
        self._history = history

    async def __call__(self, caller: dict[str, Any] | None, endpoint: str, body: dict[str, Any],
                       request_id: str) -> tuple[int, Any]:
        try:
            ctx = await self._context(caller, endpoint, dict(body), request_id)
            reply = await self._gateway.handler(ctx)
        except GatewayError as err:
            return err.status, err.envelope()
        try:
            return reply.status, await _body(ctx, reply)
        except GatewayError as err:
            return err.status, err.envelope()
        finally:
            await run_finalizers(ctx)

    async def _context(self, caller: dict[str, Any] | None, endpoint: str, body: dict[str, Any],
                       request_id: str) -> RequestContext:
        route, schema = ROUTES[endpoint]
        body.pop("stream", None)
        body.pop("stream_options", None)
        typed = validate(body, schema)
        if route == "responses":
            if body.get("background") is True:
                raise InvalidRequest("A batch line cannot be a background response.", param="background")
            check_request(body, typed)
        model = getattr(typed, "model", None) or ""
        ctx = RequestContext(request_id, route, model, body, NO_HEADERS, False, principal=caller_of(caller),
                             extension=parse_extension(body), requested_model=model)
        resolve_model(ctx, self._gateway)
        if route == "responses":
            context = await self._history.context(tenant_of(ctx.principal), typed, as_items(body.get("input")))
            body["input"] = await self._files.inline(ctx, context)
        return ctx


async def _body(ctx: RequestContext, reply: Reply) -> Any:
    """The reply's JSON document (a stream, which a line never asks for, is drained and dropped)."""
    if reply.stream is not None:
        async for _ in reply.stream:
            pass
        return {}
    doc = orjson.loads(reply.body) if reply.body else {}
    if ctx.route == "responses" and reply.status == 200:
        return ctx.get(RESPONSE) or fresh_copy(doc, ctx.body)
    return doc
