"""Prometheus metrics, in a registry owned by the app (no process-global collectors)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "llmops_requests", "HTTP requests served.", ["route", "backend", "status"], registry=r
        )
        self.latency = Histogram(
            "llmops_request_duration_seconds",
            "Time from request to the end of the response.",
            ["route", "backend", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_latency = Histogram(
            "llmops_upstream_duration_seconds",
            "Time from sending upstream to the response headers.",
            ["backend", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("llmops_in_flight_requests", "Requests being served now.", registry=r)
        self.serving = 0  # the same count as a plain int, read on the hot path (the batch lines' gate)
        self.streamed_tokens = Counter(
            "llmops_streamed_tokens", "Completion tokens relayed in streams.", ["route", "backend"], registry=r
        )
        self.tokens = Counter(
            "llmops_tokens", "Tokens reported by backends.", ["backend", "kind"], registry=r
        )
        self.upstream_errors = Counter(
            "llmops_upstream_errors", "Failed upstream exchanges.", ["backend", "reason"], registry=r
        )
        # Routing and resilience (issue 5).
        self.route_retries = Counter(
            "llmops_route_retries", "Requests sent again after an upstream failure.", ["model", "reason"], registry=r
        )
        self.route_fallbacks = Counter(
            "llmops_route_fallbacks", "Attempts served by a fallback model.", ["model", "fallback"], registry=r
        )
        self.retry_budget_exhausted = Counter(
            "llmops_retry_budget_exhausted", "Retries refused by the retry budget.", ["model"], registry=r
        )
        self.circuit_state = Gauge(
            "llmops_circuit_state", "Circuit breaker: 0 closed, 1 open, 2 half-open.", ["backend", "model"],
            registry=r,
        )
        self.upstream_cooldowns = Counter(
            "llmops_upstream_cooldowns", "Cool-downs started by Retry-After or 429.", ["backend"], registry=r
        )
        self.health_checks = Counter(
            "llmops_health_checks", "Active health checks.", ["backend", "result"], registry=r
        )
        self.unroutable = Counter(
            "llmops_unroutable", "Requests no deployment could take.", ["model", "reason"], registry=r
        )
        self.ingest_failures = Counter(
            "llmops_ingest_failures", "Background file ingestions that failed (the file is marked failed).",
            registry=r,
        )
        self.model_ready = Gauge(
            "llmops_model_ready", "1 while the model has at least one answering deployment (at the last /readyz).",
            ["model"], registry=r,
        )
        # Declarative state reconciled live (issue 14).
        self.resource_ready = Gauge(
            "llmops_resource_ready", "1 while a declared resource is ready, 0 when it failed (at the last look: "
            "/admin/state, or the reconcile loop's).", ["kind", "name"], registry=r,
        )
        self.config_generation = Gauge(
            "llmops_config_generation", "The configuration generation new requests run on.", registry=r
        )
        self.config_applies = Counter(
            "llmops_config_applies", "Desired states handed to the reconcile loop, by result.", ["result"], registry=r
        )
        self.config_restart_required = Gauge(
            "llmops_config_restart_required", "Changed settings that only a restart applies.", registry=r
        )

    def exposition(self) -> bytes:
        text: bytes = generate_openmetrics(self.registry)  # type: ignore[no-untyped-call]
        return text
