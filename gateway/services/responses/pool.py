"""The shared PostgreSQL pool, opened and migrated on first use; database failures become a 503."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from gateway.kernel.errors import ServiceOverloaded
from gateway.services.responses.schema import COMPONENT, MIGRATIONS
from gateway.services.stores.migrated import Connection, MigratedPool

if TYPE_CHECKING:
    from gateway.services.stores.postgres import Postgres

__all__ = ["Connection", "StatePool", "StateUnavailable"]


class StateUnavailable(ServiceOverloaded):
    default_code = "response_store_unavailable"


class StatePool(MigratedPool):
    """Hands out connections of the shared pool; the first one opens PostgreSQL (embedded or by DSN)
    and applies this component's migrations. ``on_open`` runs once, after that."""

    def __init__(self, open_postgres: Callable[[], Awaitable[Postgres]],
                 on_open: Callable[[], None] | None = None) -> None:
        super().__init__(open_postgres, COMPONENT, MIGRATIONS, StateUnavailable, "response store", on_open)

