"""HTTP surface: OpenAI's Files and Vector Stores endpoints."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request

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
            filename = upload.filename or "upload.txt"
        if len(data) > self._service.settings.max_file_bytes:
            raise PayloadTooLarge("The file is larger than rag.max_file_bytes.", param="file")
        return file_object(await self._service.create_file(tenant_of(principal), filename, purpose, data))

    async def get_file(self, request: Request, principal: Principal | None) -> Any:
        return file_object(await self._service.get_file(tenant_of(principal), request.path_params["file_id"]))

    async def list_uploaded_files(self, request: Request, principal: Principal | None) -> Any:
        limit = _int_param(request.query_params.get("limit"), 100, 1, 10_000, "limit")
        rows = await self._service.list_files(tenant_of(principal), limit + 1)
        return list_page([file_object(r) for r in rows[:limit]], len(rows) > limit)

    async def delete_file(self, request: Request, principal: Principal | None) -> Any:
        file_id = request.path_params["file_id"]
        await self._service.delete_file(tenant_of(principal), file_id)
        return {"id": file_id, "object": "file", "deleted": True}

    async def detach_file(self, request: Request, principal: Principal | None) -> Any:
        p = request.path_params
        await self._service.detach_file(tenant_of(principal), p["store_id"], p["file_id"])
        return {"id": p["file_id"], "object": "vector_store.file.deleted", "deleted": True}

    async def create_store(self, request: Request, principal: Principal | None) -> Any:
        body = parse_object(await request.body())
        name, metadata, file_ids = body.get("name") or "", body.get("metadata") or {}, body.get("file_ids") or []
        if not isinstance(name, str) or not isinstance(metadata, dict) or not isinstance(file_ids, list):
            raise InvalidRequest("name must be a string, metadata an object and file_ids an array.")
        chunking = parse_chunking(body.get("chunking_strategy"), self._service.default_chunking)
        tenant = tenant_of(principal)
        store = await self._service.create_store(tenant, name, metadata)
        for file_id in file_ids:
            await self._service.add_file(tenant, store.id, str(file_id), chunking, None)
        return store_object(store, *await self._service.stats(store))

    async def list_stores(self, request: Request, principal: Principal | None) -> Any:
        q = request.query_params
        limit = _int_param(q.get("limit"), 20, 1, 100, "limit")
        stores = await self._service.list_stores(tenant_of(principal), limit + 1, q.get("after"),
                                                 q.get("order", "desc") != "asc")
        data = [store_object(s, *await self._service.stats(s)) for s in stores[:limit]]
        return list_page(data, len(stores) > limit)

    async def get_store(self, request: Request, principal: Principal | None) -> Any:
        store = await self._service.store(tenant_of(principal), request.path_params["store_id"])
        return store_object(store, *await self._service.stats(store))

    async def delete_store(self, request: Request, principal: Principal | None) -> Any:
        store_id = request.path_params["store_id"]
        await self._service.delete_store(tenant_of(principal), store_id)
        return {"id": store_id, "object": "vector_store.deleted", "deleted": True}

    async def add_file(self, request: Request, principal: Principal | None) -> Any:
        body = parse_object(await request.body())
        file_id, attributes = body.get("file_id"), body.get("attributes")
        if not isinstance(file_id, str):
            raise InvalidRequest("Missing required parameter: 'file_id'.", param="file_id")
        if attributes is not None and not isinstance(attributes, dict):
            raise InvalidRequest("'attributes' must be an object.", param="attributes")
        chunking = parse_chunking(body.get("chunking_strategy"), self._service.default_chunking)
        row = await self._service.add_file(tenant_of(principal), request.path_params["store_id"], file_id,
                                           chunking, attributes)
        return store_file_object(row)

    async def list_files(self, request: Request, principal: Principal | None) -> Any:
        limit = _int_param(request.query_params.get("limit"), 20, 1, 100, "limit")
        rows = await self._service.store_files(tenant_of(principal), request.path_params["store_id"], limit + 1)
        return list_page([store_file_object(r) for r in rows[:limit]], len(rows) > limit)

    async def get_store_file(self, request: Request, principal: Principal | None) -> Any:
        p = request.path_params
        return store_file_object(await self._service.store_file(tenant_of(principal), p["store_id"], p["file_id"]))

    async def search(self, request: Request, principal: Principal | None) -> Any:
        body = parse_object(await request.body())
        queries = _queries(body.get("query"))
        k = _int_param(body.get("max_num_results"), 10, 1, 50, "max_num_results")
        ranking = body.get("ranking_options") or {}
        threshold = float(ranking.get("score_threshold", body.get("score_threshold", 0.0)) or 0.0)
        store = await self._service.store(tenant_of(principal), request.path_params["store_id"])
        vectors = await self._service.embedder.embed(queries)
        best: dict[str, Any] = {}
        for vector in vectors:
            for hit in await self._service.search(store, vector, k, body.get("filters"), threshold):
                if hit.chunk_id not in best or best[hit.chunk_id].score < hit.score:
                    best[hit.chunk_id] = hit
        hits = sorted(best.values(), key=lambda h: -h.score)[:k]
        return search_page(queries, hits)


def _queries(raw: Any) -> list[str]:
    if isinstance(raw, str) and raw.strip():
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(q, str) and q.strip() for q in raw):
        return list(raw)
    raise InvalidRequest("'query' must be a non-empty string or array of strings.", param="query")


def _int_param(raw: Any, default: int, low: int, high: int, name: str) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise InvalidRequest(f"'{name}' must be an integer.", param=name) from None
    if not low <= value <= high:
        raise InvalidRequest(f"'{name}' must be between {low} and {high}.", param=name)
    return value
