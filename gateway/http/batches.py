"""HTTP surface: OpenAI's Batch API (``/v1/batches``) and file downloads (``GET /v1/files/{id}/content``).

Handlers only: ``gateway/app.py`` declares each route with its door. The batch service and its jobs are
``gateway/services/batches``; the lines run through the chain in ``batch_lines.py``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.http import validate as v
from gateway.http.paging import query_of
from gateway.http.parsing import parse_object, validate
from gateway.http.responses_api.background import caller_record
from gateway.kernel.context import Principal, tenant_of
from gateway.kernel.errors import InvalidRequest
from gateway.kernel.listing import list_page
from gateway.kernel.schemas import BatchCreate, BatchPage
from gateway.services.batches.service import BatchService


class BatchesApi:
    def __init__(self, service: BatchService) -> None:
        self._service = service

    async def create(self, request: Request, principal: Principal | None) -> Any:
        body = parse_object(await request.body())
        metadata = v.metadata(body["metadata"]) if body.get("metadata") is not None else None
        typed = validate(body, BatchCreate)
        file_id = v.object_id(v.clean_text(typed.input_file_id, "input_file_id"), "File object")
        return await self._service.create(tenant_of(principal), caller_record(principal), file_id, typed.endpoint,
                                          typed.completion_window, metadata)

    async def retrieve(self, request: Request, principal: Principal | None) -> Any:
        return await self._service.retrieve(tenant_of(principal), _batch_id(request))

    async def list(self, request: Request, principal: Principal | None) -> Any:
        page = query_of(request.query_params, BatchPage)
        if page.after is not None and not v.ID.fullmatch(page.after):
            raise InvalidRequest("'after' must be a batch id.", param="after")
        data, more = await self._service.list(tenant_of(principal), page.limit or 20, page.after)
        return list_page(data, more)

    async def cancel(self, request: Request, principal: Principal | None) -> Any:
        return await self._service.cancel(tenant_of(principal), _batch_id(request))

    async def content(self, request: Request, principal: Principal | None) -> Response:
        """Any file's bytes: a batch's input, output and error files, or any other upload (the tenant's own)."""
        file_id = v.object_id(request.path_params["file_id"], "File object")
        _, data = await self._service.files.file_content(tenant_of(principal), file_id)
        return Response(data, media_type="application/octet-stream")


def _batch_id(request: Request) -> str:
    return v.object_id(request.path_params["batch_id"], "batch")
