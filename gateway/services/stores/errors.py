"""PostgreSQL failures as the gateway's 503, at each store's boundary (vector stores, response state)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
import psycopg_pool

from gateway.kernel.errors import ServiceOverloaded


@contextlib.contextmanager
def database_errors(unavailable: type[ServiceOverloaded], what: str) -> Iterator[None]:
    """Inside: an unreachable database, a full or closed pool, or an embedded server that would not start
    is raised as ``unavailable`` naming ``what`` (e.g. "vector store"); anything else passes."""
    try:
        yield
    except (psycopg.OperationalError, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed, OSError) as exc:
        raise unavailable(f"The {what} database is unavailable ({type(exc).__name__}).") from None
    except RuntimeError as exc:  # pgserver failing to start the embedded server
        if "pgserver" in repr(exc) or "postgres" in repr(exc).lower():
            raise unavailable(f"The embedded {what} database could not start.") from None
        raise
