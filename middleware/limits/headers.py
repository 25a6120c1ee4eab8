"""OpenAI-style rate limit headers from a limiter outcome."""

from __future__ import annotations

import math
from collections.abc import Sequence

from gateway.services.limits.limiter import Bucket, Dimension, Outcome


def duration(seconds: float) -> str:
    """OpenAI's reset format: ``1s``, ``6m0s``, ``1m30s``."""
    secs = max(0, math.ceil(seconds))
    minutes, secs = divmod(secs, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def rate_headers(buckets: Sequence[Bucket], outcome: Outcome) -> dict[str, str]:
    """Per dimension, the bucket with the least room left speaks for it."""
    tightest: dict[Dimension, tuple[int, int]] = {}
    for bucket, count in zip(buckets, outcome.counts, strict=True):
        remaining = max(0, bucket.limit - count)
        seen = tightest.get(bucket.dimension)
        if seen is None or remaining < seen[1]:
            tightest[bucket.dimension] = (bucket.limit, remaining)
    reset = duration(outcome.reset_s)
    headers: dict[str, str] = {}
    for dim, (limit, remaining) in tightest.items():
        headers[f"x-ratelimit-limit-{dim}"] = str(limit)
        headers[f"x-ratelimit-remaining-{dim}"] = str(remaining)
        headers[f"x-ratelimit-reset-{dim}"] = reset
    return headers
