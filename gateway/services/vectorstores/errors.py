"""Translate PostgreSQL failures into the gateway's error tree, at the store boundary."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
import psycopg_pool

from gateway.kernel.errors import ServiceOverloaded


class StoreUnavailable(ServiceOverloaded):
    default_code = "vector_store_unavailable"


@contextlib.contextmanager
def mapped_store_errors() -> Iterator[None]:
    try:
        yield
    except (psycopg.OperationalError, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed, OSError) as exc:
        raise StoreUnavailable(f"The vector store database is unavailable ({type(exc).__name__}).") from None
    except RuntimeError as exc:  # pgserver failing to start the embedded server
        if "pgserver" in repr(exc) or "postgres" in repr(exc).lower():
            raise StoreUnavailable("The embedded vector store database could not start.") from None
        raise
