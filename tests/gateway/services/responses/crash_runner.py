"""A background runner in a process of its own, for a test to SIGKILL mid-item.

``python -m tests.gateway.services.responses.crash_runner DSN``: claims queued work, stores one
stream event per response, prints ``running RESPONSE_ID`` and never finishes it.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from gateway.kernel.config.sections.stores import PostgresSettings
from gateway.services.responses import ResponseState
from gateway.services.responses.runner import Emit
from gateway.services.stores.postgres import Postgres
from tests.gateway.services.responses.conftest import SETTINGS


async def main(dsn: str) -> None:
    pg = await Postgres.open(PostgresSettings(dsn=dsn))

    async def opened() -> Postgres:
        return pg

    async def work(tenant: str, response_id: str, emit: Emit) -> dict[str, Any]:
        await emit({"type": "response.in_progress"})
        await asyncio.sleep(0.3)  # the event is written
        print(f"running {response_id}", flush=True)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    state = ResponseState(opened, SETTINGS)
    await state.run_background(work)
    print("runner listening on http://127.0.0.1:0", flush=True)  # ServerProcess waits for this line
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
