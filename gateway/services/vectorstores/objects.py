"""Rows as OpenAI's objects: ``file``, ``vector_store``, ``vector_store.file``, search results."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

STORE_ID = r"vs_[0-9a-f]{32}"


def new_store_id() -> str:
    return "vs_" + secrets.token_hex(16)


def new_file_id() -> str:
    return "file-" + secrets.token_hex(12)


@dataclass(frozen=True, slots=True)
class StoreRow:
    id: str
    tenant: str
    name: str
    metadata: dict[str, Any]
    dimensions: int
    created_at: int
    last_active_at: int | None
    version: int
    indexed: bool


@dataclass(frozen=True, slots=True)
class Hit:
    file_id: str
    seq: int
    filename: str
    text: str
    score: float
    attributes: dict[str, Any] | None

    @property
    def chunk_id(self) -> str:
        return f"{self.file_id}#{self.seq}"


def file_object(row: tuple[Any, ...]) -> dict[str, Any]:
    file_id, filename, purpose, size, created_at = row
    return {"id": file_id, "object": "file", "bytes": size, "created_at": created_at, "filename": filename,
            "purpose": purpose, "status": "processed"}


def store_object(store: StoreRow, counts: dict[str, int], usage_bytes: int) -> dict[str, Any]:
    file_counts = {k: counts.get(k, 0) for k in ("in_progress", "completed", "failed", "cancelled")}
    file_counts["total"] = sum(file_counts.values())
    return {
        "id": store.id, "object": "vector_store", "created_at": store.created_at, "name": store.name,
        "usage_bytes": usage_bytes, "file_counts": file_counts,
        "status": "in_progress" if file_counts["in_progress"] else "completed",
        "last_active_at": store.last_active_at, "metadata": store.metadata or None,
        "expires_at": None,
    }


def store_file_object(row: tuple[Any, ...]) -> dict[str, Any]:
    store_id, file_id, status, usage, created_at, chunking, attributes, last_error = row
    return {"id": file_id, "object": "vector_store.file", "usage_bytes": usage, "created_at": created_at,
            "vector_store_id": store_id, "status": status, "last_error": last_error,
            "chunking_strategy": chunking, "attributes": attributes}


def search_page(queries: list[str], hits: list[Hit]) -> dict[str, Any]:
    data = [{"file_id": h.file_id, "filename": h.filename, "score": max(0.0, min(1.0, h.score)),
             "attributes": h.attributes, "content": [{"type": "text", "text": h.text}]} for h in hits]
    return {"object": "vector_store.search_results.page", "search_query": queries, "data": data,
            "has_more": False, "next_page": None}
