"""Shared state: Redis and PostgreSQL connections, owned by the runtime."""
