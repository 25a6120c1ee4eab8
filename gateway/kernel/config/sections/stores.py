"""Where shared state lives: Redis and PostgreSQL (embedded defaults when unset)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from gateway.kernel.config.base import Section


class RedisSettings(Section):
    url: SecretStr | None = Field(
        None, description="redis:// or unix:// URL; unset = in-process state (embedded default)."
    )
    socket_timeout_ms: int = Field(50, ge=1, description="Per-command timeout; Redis slower than this counts as down.")
    connect_timeout_ms: int = Field(200, ge=1)


class PostgresSettings(Section):
    dsn: SecretStr | None = Field(
        None, description="psycopg DSN; unset = an embedded PostgreSQL (pgserver) the gateway manages."
    )
    embedded_dir: str = Field("var/pg", description="Data directory of the embedded PostgreSQL.")
    pool_min: int = Field(1, ge=0)
    pool_max: int = Field(10, ge=1)
    connect_timeout_s: float = Field(5.0, gt=0)
