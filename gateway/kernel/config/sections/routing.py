"""Settings for issue 5: routing, balancing, resilience.

Example::

    routing:
      auto_model: auto            # ``model: "auto"`` picks by modality, capability, policy and cost
      balancer: p2c_ewma          # or least_outstanding, weighted
      max_attempts: 3
      fallbacks: {gpt-4o: [gpt-4o-mini]}
      local_labels: {node: n1}    # sidecar mode: prefer deployments carrying these labels
      classifier: {code: true, simple_max_tokens: 64}
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gateway.kernel.config.base import Section


class RetryBudgetSettings(Section):
    ratio: float = Field(
        0.2, ge=0, le=1, description="Retries allowed per request (0.2: at most 20 % extra)."
    )
    min_per_s: float = Field(10.0, ge=0, description="Retries always allowed per second, whatever the ratio.")


class BackoffSettings(Section):
    base_ms: float = Field(10.0, ge=0, description="First retry waits up to this (full jitter), doubling.")
    max_ms: float = Field(500.0, ge=0)


class CircuitSettings(Section):
    failures: int = Field(5, ge=1, description="Consecutive failures that open the circuit.")
    open_s: float = Field(5.0, gt=0, description="How long an open circuit rejects before a half-open probe.")
    max_open_s: float = Field(60.0, gt=0, description="Open time doubles on failed probes up to this.")


class HealthCheckSettings(Section):
    interval_s: float = Field(5.0, ge=0, description="Active health check period; 0 turns them off.")


class ClassifierSettings(Section):
    code: bool = Field(
        True, description="Send prompts that look like code to models tagged 'code' (auto only)."
    )
    simple_max_tokens: int = Field(
        0,
        ge=0,
        description="Auto: prompts up to this many tokens (no code, no tools) go to 'small' models; 0 off.",
    )


class RoutingSettings(Section):
    auto_model: str = Field(
        "auto", description="Public name that lets the router choose; empty turns it off."
    )
    balancer: Literal["p2c_ewma", "least_outstanding", "weighted"] = "p2c_ewma"
    ewma_decay_s: float = Field(10.0, gt=0, description="Peak-EWMA latency decay time.")
    max_attempts: int = Field(3, ge=1, description="Attempts per request, first one included.")
    retry_budget: RetryBudgetSettings = RetryBudgetSettings()
    backoff: BackoffSettings = BackoffSettings()
    circuit: CircuitSettings = CircuitSettings()
    health: HealthCheckSettings = HealthCheckSettings()
    retry_after_max_s: float = Field(
        60.0, ge=0, description="Longest upstream Retry-After cool-down honoured."
    )
    fallbacks: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="Model → models tried, in order, when its own deployments fail."
    )
    local_labels: dict[str, str] = Field(
        default_factory=dict, description="Sidecar mode: deployments with all these labels are preferred."
    )
    region_header: str = Field("x-llmops-region", description="Request header naming a preferred region.")
    tenant_region_key: str = Field("region", description="Key of principal.metadata naming a default region.")
    classifier: ClassifierSettings = ClassifierSettings()
