"""Translate PostgreSQL failures into the gateway's error tree, at the store boundary."""

from __future__ import annotations

import contextlib

from gateway.kernel.errors import ServiceOverloaded
from gateway.services.stores.errors import database_errors


class StoreUnavailable(ServiceOverloaded):
    default_code = "vector_store_unavailable"


def mapped_store_errors() -> contextlib.AbstractContextManager[None]:
    return database_errors(StoreUnavailable, "vector store")
