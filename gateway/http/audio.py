"""``POST /v1/audio/transcriptions``: a multipart upload forwarded as multipart."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from gateway.http.parsing import validate
from gateway.http.responses import error_response, reply_response
from gateway.kernel.context import RequestContext, UploadedFile
from gateway.kernel.errors import GatewayError, InvalidRequest
from gateway.kernel.observability.exchange import exchange_of
from gateway.kernel.schemas import TranscriptionForm
from gateway.runtime import Runtime


class TranscriptionEndpoint:
    route = "transcriptions"

    def __init__(self, runtime: Runtime, max_bytes: int) -> None:
        self._runtime = runtime
        self._max_bytes = max_bytes

    async def handle(self, request: Request) -> Response:
        ex = exchange_of(request.scope)
        ex.route = self.route
        try:
            fields, files = await self._read_form(request)
            typed = validate(fields, TranscriptionForm, strict=False)
            ctx = RequestContext(ex.request_id, "transcriptions", typed.model, fields, typed, request.headers)
            ctx.files = files
            ex.ctx = ctx
            reply = await self._runtime.handler(ctx)
            return reply_response(reply, ctx)
        except GatewayError as err:
            ex.error_code = err.code
            return error_response(err)

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
