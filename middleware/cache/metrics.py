"""The cache's metrics, registered on the app's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class CacheMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._results = Counter("llmops_cache_requests", "Cacheable requests by result.", ["route", "result"],
                                registry=registry)
        self._errors = Counter("llmops_cache_errors", "Cache store failures (the request bypassed the cache).",
                               ["backend", "op", "error"], registry=registry)

    def result(self, route: str, result: str) -> None:
        self._results.labels(route, result).inc()

    def error(self, backend: str, op: str, exc: BaseException) -> None:
        self._errors.labels(backend, op, str(exc) or type(exc).__name__).inc()
