"""JSON endpoints of the OpenAI API: chat, completions, embeddings, images, speech."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.http.parsing import parse_object, validate
from gateway.http.responses import error_response, reply_response
from gateway.kernel.context import RequestContext, Route
from gateway.kernel.errors import GatewayError, InvalidRequest
from gateway.kernel.observability.exchange import exchange_of
from gateway.runtime import Runtime


class JsonEndpoint:
    def __init__(
        self,
        route: Route,
        schema: type[object],
        runtime: Runtime,
        *,
        streams: bool = False,
        default_model: str | None = None,
    ) -> None:
        self.route: Route = route
        self._schema = schema
        self._runtime = runtime
        self._streams = streams
        self._default_model = default_model

    async def handle(self, request: Request) -> Response:
        ex = exchange_of(request.scope)
        ex.route = self.route
        try:
            raw = parse_object(await request.body())
            typed = validate(raw, self._schema)
            model = getattr(typed, "model", None) or self._default_model
            if not model:
                raise InvalidRequest("Missing required parameter: 'model'.", param="model")
            stream = self._streams and raw.get("stream") is True
            ctx = RequestContext(ex.request_id, self.route, model, raw, typed, request.headers, stream)
            ex.ctx = ctx
            reply = await self._runtime.handler(ctx)
            return reply_response(reply, ctx)
        except GatewayError as err:
            ex.error_code = err.code
            return error_response(err)
