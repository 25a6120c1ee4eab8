"""HTTP surface: OpenAI's Files and Vector Stores endpoints."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request

from gateway.http import validate as v
from gateway.http.parsing import parse_object
from gateway.kernel.context import Principal, tenant_of
from gateway.kernel.errors import InvalidRequest, PayloadTooLarge
from gateway.services.vectorstores.chunking import parse_chunking
from gateway.services.vectorstores.objects import file_object, list_page, search_page, store_file_object, store_object
from gateway.services.vectorstores.service import VectorStoreService

Handler = Callable[[Request, Principal | None], Awaitable[Any]]
_PURPOSES = {"assistants", "user_data", "batch", "fine-tune", "vision"}


class VectorStoreApi:
    """Handlers only: ``gateway/app.py`` declares each route with its door (auth, action, limits)."""

    def __init__(self, service: VectorStoreService) -> None:
        self._service = service

    async def create_file(self, request: Request, principal: Principal | None) -> Any:
        async with request.form(max_files=1, max_fields=8) as form:
            upload, purpose = form.get("file"), form.get("purpose")
            if upload is None or isinstance(upload, str):
                raise InvalidRequest("Missing required parameter: 'file'.", param="file")
            if not isinstance(purpose, str) or purpose not in _PURPOSES:
                raise InvalidRequest(f"'purpose' must be one of {sorted(_PURPOSES)}.", param="purpose")
            data = await upload.read()
            filename = v.clean_text(upload.filename or "upload.txt", "file", max_len=512)
        if len(data) > self._service.settings.max_file_bytes:
            raise PayloadTooLarge("The file is larger than rag.max_file_bytes.", param="file")
        return file_object(await self._service.create_file(tenant_of(principal), filename, purpose, data))

    async def get_file(self, request: Request, principal: Principal | None) -> Any:
        file_id = v.object_id(request.path_params["file_id"], "File object")
        return file_object(await self._service.get_file(tenant_of(principal), file_id))

    async def list_uploaded_files(self, request: Request, principal: Principal | None) -> Any:
        limit = _int_param(request.query_params.get("limit"), 100, 1, 10_000, "limit")
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
        q = request.query_params
        limit = _int_param(q.get("limit"), 20, 1, 100, "limit")
        after = q.get("after")
        order = q.get("order", "desc")
        if order not in ("asc", "desc"):
            raise InvalidRequest("'order' must be 'asc' or 'desc'.", param="order")
        if after is not None and not v.ID.fullmatch(after):
            raise InvalidRequest("'after' must be a vector store id.", param="after")
        stores = await self._service.list_stores(tenant_of(principal), limit + 1, after, order != "asc")
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
        file_id = body.get("file_id")
        if not isinstance(file_id, str):
            raise InvalidRequest("Missing required parameter: 'file_id'.", param="file_id")
        file_id = v.object_id(v.clean_text(file_id, "file_id"), "File object")
        attributes = v.attributes(body.get("attributes")) if body.get("attributes") is not None else None
        chunking = parse_chunking(body.get("chunking_strategy"), self._service.default_chunking)
        row = await self._service.add_file(tenant_of(principal), _store_id(request), file_id, chunking, attributes)
        return store_file_object(row)

    async def list_files(self, request: Request, principal: Principal | None) -> Any:
        limit = _int_param(request.query_params.get("limit"), 20, 1, 100, "limit")
        rows = await self._service.store_files(tenant_of(principal), _store_id(request), limit + 1)
        return list_page([store_file_object(r) for r in rows[:limit]], len(rows) > limit)

    async def get_store_file(self, request: Request, principal: Principal | None) -> Any:
        store_id, file_id = _ids(request)
        return store_file_object(await self._service.store_file(tenant_of(principal), store_id, file_id))

    async def search(self, request: Request, principal: Principal | None) -> Any:
        body = parse_object(await request.body())
        queries = _queries(body.get("query"))
        k = _int_param(body.get("max_num_results"), 10, 1, 50, "max_num_results")
        threshold = _threshold(body)
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


def _int_param(raw: Any, default: int, low: int, high: int, name: str) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError, OverflowError):
        raise InvalidRequest(f"'{name}' must be an integer.", param=name) from None
    if not low <= value <= high:
        raise InvalidRequest(f"'{name}' must be between {low} and {high}.", param=name)
    return value
