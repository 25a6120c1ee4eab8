"""Settings for issue 3: the policy engine."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from gateway.kernel.config.base import Section

PolicyAction = Literal["chat", "completion", "embeddings", "image", "audio", "tool_call", "rag_query", "admin"]


class PolicySettings(Section):
    engine: Literal["rego", "opa"] = Field("rego", description="Embedded Rego (regorus) or a remote OPA.")
    paths: tuple[str, ...] = Field(
        ("config/policies",), description="Directories (or files) of *.rego and *.json data for the embedded engine."
    )
    modules: dict[str, str] = Field(
        default_factory=dict, description="Rego modules given inline (name → source), compiled with the files "
        "under paths; how `llmops apply` ships a policy to a gateway that cannot read the caller's files.",
    )
    data: dict[str, Any] = Field(default_factory=dict, description="Policy data given inline (merged into data).")
    decision: str = Field("llmops/authz/decision", description="Rule path of the decision document.")
    opa_url: str | None = Field(None, pattern=r"^https?://", description="Base URL of the remote OPA.")
    opa_timeout_ms: int = Field(250, ge=1)
    fail_open: tuple[PolicyAction, ...] = Field(
        (), description="Actions allowed when the engine is unreachable (low-risk only)."
    )
    reload_interval_s: float = Field(2.0, ge=0, description="Poll policy files for changes; 0 = never reload.")
    cache_size: int = Field(4096, ge=0, description="Decision cache entries; 0 = no cache.")
    cache_ttl_s: float = Field(5.0, ge=0)
    log_decisions: Literal["all", "deny", "none"] = "all"
    region: str = Field("local", description="This gateway's region, in context.region.")
