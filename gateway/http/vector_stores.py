"""HTTP surface: OpenAI's Files and Vector Stores endpoints."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request

from gateway.http import validate as v
from gateway.http.paging import query_of
from gateway.http.parsing import parse_object, validate
from gateway.kernel.context import Principal, tenant_of
from gateway.kernel.errors import InvalidRequest, PayloadTooLarge
from gateway.kernel.listing import list_page
from gateway.kernel.schemas import (
    PURPOSES,
    FilePage,
    Page,
    VectorStoreCreate,
    VectorStoreFileCreate,
    VectorStoreSearch,
)
from gateway.services.batches.lines import parse_input
from gateway.services.vectorstores.chunking import parse_chunking
from gateway.services.vectorstores.objects import file_object, search_page, store_file_object, store_object
from gateway.services.vectorstores.service import VectorStoreService

Handler = Callable[[Request, Principal | None], Awaitable[Any]]


class VectorStoreApi:
    """Handlers only: ``gateway/app.py`` declares each route with its door (auth, action, limits).

    Bodies and query strings are validated with the typed definitions of ``gateway/kernel/schemas.py``
    (the same ones ``/openapi.json`` describes), then by ``gateway/http/validate.py`` for what JSON
    Schema does not say (NUL characters, lone surrogates, numbers beyond what JSON readers agree on).
    """

    def __init__(self, service: VectorStoreService, batch_lines: int = 50_000) -> None:
        self._service = service
        self._batch_lines = batch_lines  # most requests in a file uploaded with purpose "batch"

    async def create_file(self, request: Request, principal: Principal | None) -> Any:
        async with request.form(max_files=1, max_fields=8) as form:
            upload, purpose = form.get("file"), form.get("purpose")
            if upload is None or isinstance(upload, str):
                raise InvalidRequest("Missing required parameter: 'file'.", param="file")
            if not isinstance(purpose, str) or purpose not in PURPOSES:
                raise InvalidRequest(f"'purpose' must be one of {sorted(PURPOSES)}.", param="purpose")
            data = await upload.read()
            filename = v.clean_text(upload.filename or "upload.txt", "file", max_len=512)
        if len(data) > self._service.settings.max_file_bytes:
            raise PayloadTooLarge("The file is larger than rag.max_file_bytes.", param="file")
        if purpose == "batch":
            parse_input(data, self._batch_lines)  # a 400 naming the first bad line
        return file_object(await self._service.create_file(tenant_of(principal), filename, purpose, data))

    async def get_file(self, request: Request, principal: Principal | None) -> Any:
        file_id = v.object_id(request.path_params["file_id"], "File object")
        return file_object(await self._service.get_file(tenant_of(principal), file_id))

    async def list_uploaded_files(self, request: Request, principal: Principal | None) -> Any:
        limit = query_of(request.query_params, FilePage).limit or 100
        rows = await self._service.list_files(tenant_of(principal), limit + 1)
        return list_page([file_object(r) for r in rows[:limit]], len(rows) > limit)

    async def delete_file(self, request: Request, principal: Principal | None) -> Any:
        file_id = v.object_id(request.path_params["file_id"], "File object")
        await self._service.delete_file(tenant_of(principal), file_id)
        return {"id": file_id, "object": "file", "deleted": True}

    async def detach_file(self, request: Request, principal: Principal | None) -> Any:
        store_id, file_id = _ids(request)
        await self._service.detach_file(tenant_of(principal), store_id, file_id)
        return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}

    async def create_store(self, request: Request, principal: Principal | None) -> Any:
        body = parse_object(await request.body())
        name = v.clean_text(body.get("name") or "", "name", max_len=256)
        metadata = v.metadata(body.get("metadata"))
        validate(body, VectorStoreCreate)
        file_ids = body.get("file_ids") or []
        if not isinstance(file_ids, list) or len(file_ids) > 500:
            raise InvalidRequest("'file_ids' must be an array of at most 500 file ids.", param="file_ids")
        file_ids = [v.object_id(v.clean_text(f, "file_ids"), "File object") for f in file_ids]
        chunking = parse_chunking(body.get("chunking_strategy"), self._service.default_chunking)
        tenant = tenant_of(principal)
        store = await self._service.create_store(tenant, name, metadata)
        for file_id in file_ids:
            await self._service.add_file(tenant, store.id, file_id, chunking, None)
        return store_object(store, *await self._service.stats(store))

    async def list_stores(self, request: Request, principal: Principal | None) -> Any:
        page = query_of(request.query_params, Page)
        limit, after = page.limit or 20, page.after
        if after is not None and not v.ID.fullmatch(after):
            raise InvalidRequest("'after' must be a vector store id.", param="after")
        stores = await self._service.list_stores(tenant_of(principal), limit + 1, after, page.order != "asc")
        data = [store_object(s, *await self._service.stats(s)) for s in stores[:limit]]
        return list_page(data, len(stores) > limit)

    async def get_store(self, request: Request, principal: Principal | None) -> Any:
        store = await self._service.store(tenant_of(principal), _store_id(request))
        return store_object(store, *await self._service.stats(store))

    async def delete_store(self, request: Request, principal: Principal | None) -> Any:
        store_id = _store_id(request)
        await self._service.delete_store(tenant_of(principal), store_id)
        return {"id": store_id, "object": "vector_store.deleted", "deleted": True}

    async def add_file(self, request: Request, principal: Principal | None) -> Any:
        body = parse_object(await request.body())
        attributes = v.attributes(body.get("attributes")) if body.get("attributes") is not None else None
        file_id = v.object_id(v.clean_text(validate(body, VectorStoreFileCreate).file_id, "file_id"), "File object")
        chunking = parse_chunking(body.get("chunking_strategy"), self._service.default_chunking)
        row = await self._service.add_file(tenant_of(principal), _store_id(request), file_id, chunking, attributes)
        return store_file_object(row)

    async def list_files(self, request: Request, principal: Principal | None) -> Any:
        limit = query_of(request.query_params, Page).limit or 20
        rows = await self._service.store_files(tenant_of(principal), _store_id(request), limit + 1)
        return list_page([store_file_object(r) for r in rows[:limit]], len(rows) > limit)

    async def get_store_file(self, request: Request, principal: Principal | None) -> Any:
        store_id, file_id = _ids(request)
        return store_file_object(await self._service.store_file(tenant_of(principal), store_id, file_id))

    async def search(self, request: Request, principal: Principal | None) -> Any:
        body = parse_object(await request.body())
        queries = _queries(body.get("query"))
        threshold = _threshold(body)
        k = validate(body, VectorStoreSearch).max_num_results or 10
        if body.get("filters") is not None:
            v.filters(body["filters"])
        store = await self._service.store(tenant_of(principal), _store_id(request))
        vectors = await self._service.embedder.embed(queries)
        best: dict[str, Any] = {}
        for vector in vectors:
            for hit in await self._service.search(store, vector, k, body.get("filters"), threshold):
                if hit.chunk_id not in best or best[hit.chunk_id].score < hit.score:
                    best[hit.chunk_id] = hit
        hits = sorted(best.values(), key=lambda h: -h.score)[:k]
        return search_page(queries, hits)


def _queries(raw: Any) -> list[str]:
    items = raw if isinstance(raw, list) and 0 < len(raw) <= 16 else [raw]
    if all(isinstance(q, str) and q.strip() for q in items):
        return [v.clean_text(q, "query", max_len=16_384) for q in items]
    raise InvalidRequest("'query' must be a non-empty string or array of strings.", param="query")


def _threshold(body: dict[str, Any]) -> float:
    ranking = body.get("ranking_options")
    if ranking is not None and not isinstance(ranking, dict):
        raise InvalidRequest("'ranking_options' must be an object.", param="ranking_options")
    raw = (ranking or {}).get("score_threshold", body.get("score_threshold"))
    if raw is None:
        return 0.0
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0.0 <= raw <= 1.0:
        raise InvalidRequest("'score_threshold' must be a number from 0 to 1.",
                             param="ranking_options.score_threshold")
    return float(raw)


def _store_id(request: Request) -> str:
    return v.object_id(request.path_params["store_id"], "vector store")


def _ids(request: Request) -> tuple[str, str]:
    return _store_id(request), v.object_id(request.path_params["file_id"], "file in this vector store")


