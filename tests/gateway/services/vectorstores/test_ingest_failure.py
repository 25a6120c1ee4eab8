"""Background ingestion that fails (here: the database refuses the data) marks the file ``failed`` with
``last_error`` and reports it (log and metric callback); it never stays ``in_progress`` silently."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import psycopg

from gateway.kernel.config.sections.rag import RagSettings
from gateway.services.vectorstores.chunking import Chunking
from gateway.services.vectorstores.objects import StoreRow
from gateway.services.vectorstores.service import VectorStoreService


class Conn:
    def __init__(self) -> None:
        self.executed: list[tuple[str, Any]] = []

    async def execute(self, query: str, params: Any = None) -> None:
        self.executed.append((query, params))


class Pool:
    def __init__(self) -> None:
        self.conn = Conn()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        yield self.conn


class Refusing(VectorStoreService):
    fake = Pool()

    async def pool(self) -> Any:
        return self.fake

    async def ingest(self, *args: Any, **kwargs: Any) -> int:
        raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")


async def unused() -> Any:
    raise AssertionError("no database here")


async def test_a_failed_background_ingestion_marks_the_file_and_reports_it() -> None:
    reported: list[tuple[str, str, str]] = []
    service = Refusing(unused, None, RagSettings(), on_failure=lambda *a: reported.append(a))  # type: ignore[arg-type]
    store = StoreRow("vs_1", "acme", "n", {}, 3, 0, 0, 1, False)
    await service._ingest_quietly(store, "file-1", Chunking(800, 400))
    assert reported and reported[0][:2] == ("vs_1", "file-1") and "DataError" in reported[0][2]
    marked = [params for query, params in service.fake.conn.executed if "SET status" in query]
    assert marked and marked[0][0] == "failed"
    assert "Ingestion failed: DataError" in marked[0][2].obj["message"]
