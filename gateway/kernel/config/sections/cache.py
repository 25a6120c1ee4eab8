"""Settings for issue 4: exact and semantic response cache."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gateway.kernel.config.base import Section


class CacheRule(Section):
    """Per-route or per-key overrides; ``None`` keeps the value from the level below."""

    enabled: bool | None = None
    ttl_s: int | None = Field(None, ge=1)
    semantic: bool | None = None
    nondeterministic: bool | None = Field(None, description="Also cache answers sampled with temperature > 0.")


CacheRoute = Literal["chat", "embeddings", "responses"]


def _default_routes() -> dict[CacheRoute, CacheRule]:
    return {"chat": CacheRule(), "embeddings": CacheRule(), "responses": CacheRule()}


class CacheSettings(Section):
    backend: Literal["auto", "memory", "redis"] = Field(
        "auto", description="auto = Redis when redis.url is set, else an in-process LRU."
    )
    max_entries: int = Field(10_000, ge=1, description="In-process LRU capacity.")
    local_ttl_s: int = Field(
        10, ge=0, description="With Redis: keep hot entries in process this long too (0 = Redis only)."
    )
    local_max_entries: int = Field(1000, ge=1, description="With Redis: capacity of the in-process tier.")
    max_entry_bytes: int = Field(1_048_576, ge=1024, description="Larger answers are not cached.")
    ttl_s: int = Field(3600, ge=1)
    nondeterministic: bool = Field(False, description="Cache answers sampled with temperature > 0 too.")
    routes: dict[CacheRoute, CacheRule] = Field(
        default_factory=_default_routes,
        description="Routes the cache serves, with their overrides.",
    )
    keys: dict[str, CacheRule] = Field(default_factory=dict, description="Overrides by API key id.")
    tenants: dict[str, CacheRule] = Field(default_factory=dict, description="Overrides by tenant.")
    semantic: bool = Field(False, description="Semantic cache (opt-in; also per route/key/tenant).")
    semantic_threshold: float = Field(0.92, gt=0, le=1, description="Cosine similarity needed for a hit.")
    semantic_index: Literal["auto", "memory", "pgvector"] = Field(
        "auto", description="auto = pgvector when postgres.dsn is set, else in process."
    )
    semantic_max_per_scope: int = Field(1000, ge=1, description="In-process index: entries kept per scope.")
