"""JSON endpoints of the OpenAI API (chat, completions, embeddings, images, speech) and transcriptions.

The body is parsed and validated once; the model name is resolved here, before any policy question:
an alias becomes its canonical model, ``auto`` is flagged for the router, anything else is a 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from gateway.http.parsing import parse_object, validate
from gateway.http.responses import reply_response
from gateway.kernel.context import Principal, RequestContext, Route, UploadedFile
from gateway.kernel.errors import GatewayError, InvalidRequest, ModelNotFound
from gateway.kernel.extension import parse_extension
from gateway.kernel.observability.exchange import exchange_of
from gateway.kernel.schemas import TranscriptionForm

if TYPE_CHECKING:
    from gateway.wiring import Gateway


def resolve_model(ctx: RequestContext, gateway: Gateway) -> None:
    """Canonical model, or the ``auto`` flag; ``ModelNotFound`` (404) for anything else."""
    registry = gateway.registry
    entry = registry.resolve(ctx.model)
    if entry is not None:
        ctx.model = entry.name
    elif registry.auto is not None and ctx.model == registry.auto_name:
        ctx.auto = True
    else:
        raise ModelNotFound(f"The model {ctx.model!r} does not exist or you do not have access to it.",
                            param="model")


class JsonEndpoint:
    def __init__(
        self,
        route: Route,
        schema: type[object],
        gateway: Gateway,
        *,
        streams: bool = False,
        default_model: str | None = None,
    ) -> None:
        self.route: Route = route
        self._schema = schema
        self._gateway = gateway
        self._streams = streams
        self._default_model = default_model

    async def handle(self, request: Request, principal: Principal | None) -> Response:
        ex = exchange_of(request.scope)
        raw = parse_object(await request.body())
        typed = validate(raw, self._schema)
        model = getattr(typed, "model", None) or self._default_model
        if not model:
            raise InvalidRequest("Missing required parameter: 'model'.", param="model")
        stream = self._streams and raw.get("stream") is True
        ctx = RequestContext(ex.request_id, self.route, model, raw, request.headers, stream, principal=principal,
                             extension=parse_extension(raw), requested_model=model)
        ex.ctx = ctx
        resolve_model(ctx, self._gateway)
        reply = await self._gateway.handler(ctx)
        return reply_response(reply, ctx)


class TranscriptionEndpoint:
    """``POST /v1/audio/transcriptions``: a multipart upload forwarded as multipart."""

    def __init__(self, gateway: Gateway, max_bytes: int) -> None:
        self._gateway = gateway
        self._max_bytes = max_bytes

    async def handle(self, request: Request, principal: Principal | None) -> Response:
        ex = exchange_of(request.scope)
        fields, files = await self._read_form(request)
        typed = validate(fields, TranscriptionForm, strict=False)
        ctx = RequestContext(ex.request_id, "transcriptions", typed.model, fields, request.headers,
                             principal=principal, requested_model=typed.model)
        ctx.files = files
        ex.ctx = ctx
        resolve_model(ctx, self._gateway)
        reply = await self._gateway.handler(ctx)
        return reply_response(reply, ctx)

    async def _read_form(self, request: Request) -> tuple[dict[str, Any], list[UploadedFile]]:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise InvalidRequest("Send the audio as multipart/form-data with a 'file' part.", param="file")
        try:
            form = await request.form(max_files=4, max_fields=64, max_part_size=self._max_bytes)
        except GatewayError:
            raise
        except Exception as exc:  # the multipart parser's own errors
            raise InvalidRequest(f"Malformed multipart body: {exc}.", param="file") from None
        fields: dict[str, Any] = {}
        files: list[UploadedFile] = []
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read()
                kind = value.content_type or "application/octet-stream"
                files.append(UploadedFile(key, value.filename or "audio", kind, data))
            elif key.endswith("[]"):
                fields.setdefault(key, []).append(value)
            else:
                fields[key] = value
        if not any(f.field == "file" for f in files):
            raise InvalidRequest("Missing required parameter: 'file'.", param="file")
        return fields, files
