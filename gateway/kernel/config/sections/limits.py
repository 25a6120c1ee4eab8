"""Settings for issue 3: rate limits and budgets."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gateway.kernel.config.base import Section


class Rate(Section):
    """Per-minute limits; ``None`` = unlimited."""

    rpm: int | None = Field(None, ge=0, description="Requests per window.")
    tpm: int | None = Field(None, ge=0, description="Tokens per window (estimated up front, reconciled after).")


class Price(Section):
    """USD per million tokens."""

    input_per_1m: float = Field(0.0, ge=0)
    output_per_1m: float = Field(0.0, ge=0)


class LimitsSettings(Section):
    backend: Literal["auto", "local", "redis"] = Field(
        "auto", description="auto = Redis when redis.url is set, else in process."
    )
    on_redis_error: Literal["local", "deny"] = Field(
        "local", description="When Redis is unreachable: fall back to the local limiter, or refuse."
    )
    redis_retry_s: float = Field(5.0, gt=0, description="After a Redis failure, how long to stay on the fallback.")
    window_s: int = Field(60, ge=1, description="The sliding window of rpm/tpm: at most the limit in any window_s.")
    key: Rate = Field(Rate(), description="Default for every key (a key's own rpm/tpm wins).")
    tenants: dict[str, Rate] = Field(default_factory=dict, description="Per tenant; '*' = every tenant.")
    models: dict[str, Rate] = Field(default_factory=dict, description="Per model (shared by all callers).")
    default_completion_tokens: int = Field(256, ge=0, description="Token estimate when max_tokens is absent.")
    prices: dict[str, Price] = Field(default_factory=dict, description="Per model; '*' = fallback price.")
    tenant_budgets_usd: dict[str, float] = Field(default_factory=dict)
    flush_interval_s: float = Field(1.0, gt=0, description="How often usage and spend are written out.")
