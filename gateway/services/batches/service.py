"""The Batch API's operations: create, retrieve, list, cancel. The work itself is ``runner.py``'s jobs.

A batch is created ``validating`` together with its plan job (one transaction), so a batch is never
left without the job that moves it on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from gateway.kernel.config.sections.batches import BatchesSettings
from gateway.kernel.errors import InvalidRequest, NotFound, ServiceOverloaded
from gateway.services.batches import store
from gateway.services.batches.objects import FINAL, batch_object, new_batch_id
from gateway.services.batches.schema import COMPONENT, MIGRATIONS
from gateway.services.batches.store import BatchRow
from gateway.services.jobs.engine import JobEngine
from gateway.services.stores.migrated import MigratedPool
from gateway.services.vectorstores.service import VectorStoreService

if TYPE_CHECKING:
    from gateway.services.stores.postgres import Postgres

PLAN = "batches.plan"
CHUNK = "batches.chunk"


class BatchesUnavailable(ServiceOverloaded):
    default_code = "batches_unavailable"


class BatchService:
    def __init__(self, open_postgres: Callable[[], Awaitable[Postgres]], files: VectorStoreService,
                 jobs: JobEngine, settings: BatchesSettings) -> None:
        self.db = MigratedPool(open_postgres, COMPONENT, MIGRATIONS, BatchesUnavailable, "batch store")
        self.files = files
        self.jobs = jobs
        self.settings = settings

    async def ready(self) -> None:
        """Tables of the batches and of the files exist, the job engine runs in this replica."""
        await self.files.pool()
        await self.db.pool()
        with self.db.errors():
            await self.jobs.start()

    async def create(self, tenant: str, caller: dict[str, Any] | None, input_file_id: str, endpoint: str,
                     window: str, metadata: dict[str, Any] | None) -> dict[str, Any]:
        await self.ready()
        found = await self.files.get_file(tenant, input_file_id)
        if found[2] != "batch":
            raise InvalidRequest(f"File {input_file_id} was not uploaded with purpose 'batch'.",
                                 param="input_file_id")
        created = store.now()
        row = BatchRow(new_batch_id(), tenant, caller, endpoint, input_file_id, window, "validating", created,
                       created + int(self.settings.completion_window_s), dict.fromkeys(store.TIMES),
                       None, None, None, metadata, 0, 0, 0, 0)
        async with self.db.transaction() as conn:
            await store.insert(conn, row)
            await self.jobs.defer(PLAN, [{"batch_id": row.id}], connection=conn)
        return batch_object(row, 0, 0)

    async def retrieve(self, tenant: str, batch_id: str) -> dict[str, Any]:
        await self.ready()  # with the embedded database, this replica's worker starts on the API's first use
        async with self.db.connection() as conn:
            row = await store.get(conn, batch_id, tenant)
            if row is None:
                raise NotFound(f"No batch found with id '{batch_id}'.", param="batch_id")
            return await self._object(conn, row)

    async def list(self, tenant: str, limit: int, after: str | None) -> tuple[list[dict[str, Any]], bool]:
        await self.ready()
        async with self.db.connection() as conn:
            rows = await store.page(conn, tenant, limit + 1, after)
            return [await self._object(conn, r) for r in rows[:limit]], len(rows) > limit

    async def cancel(self, tenant: str, batch_id: str) -> dict[str, Any]:
        """``validating``: cancelled at once; ``in_progress``: ``cancelling``, until its running chunks
        stop (their finished lines land in the output file); already cancelling or cancelled: as is."""
        await self.ready()
        async with self.db.transaction() as conn:
            row = await store.get(conn, batch_id, tenant, lock=True)
            if row is None:
                raise NotFound(f"No batch found with id '{batch_id}'.", param="batch_id")
            if row.status in FINAL - {"cancelled"} or row.status == "finalizing":
                raise InvalidRequest(f"Cannot cancel a batch with status '{row.status}'.", param="batch_id",
                                     code="batch_not_cancellable")
            if row.status == "validating":
                await store.move(conn, batch_id, "cancelling", ("validating",))
                await store.move(conn, batch_id, "cancelled", ("cancelling",))
            else:
                # the chunk that finishes last (one still running, or queued) finalizes it as cancelled
                await store.move(conn, batch_id, "cancelling", ("in_progress",))
        return await self.retrieve(tenant, batch_id)

    async def _object(self, conn: store.Connection, row: BatchRow) -> dict[str, Any]:
        if row.status in FINAL:
            return batch_object(row, row.completed, row.failed)
        return batch_object(row, *await store.counts(conn, row.id))
