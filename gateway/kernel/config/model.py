"""The settings model. Every section is frozen and rejects unknown keys."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from gateway.kernel.config.base import Section
from gateway.kernel.config.sections.auth import AuthSettings
from gateway.kernel.config.sections.batches import BatchesSettings, JobsSettings
from gateway.kernel.config.sections.cache import CacheSettings
from gateway.kernel.config.sections.limits import LimitsSettings
from gateway.kernel.config.sections.mcp import McpSettings
from gateway.kernel.config.sections.policy import PolicySettings
from gateway.kernel.config.sections.rag import RagSettings
from gateway.kernel.config.sections.reconcile import ReconcileSettings
from gateway.kernel.config.sections.responses import ResponsesSettings
from gateway.kernel.config.sections.routing import RoutingSettings
from gateway.kernel.config.sections.stores import PostgresSettings, RedisSettings
from gateway.kernel.config.sections.tools import ToolsSettings

# What a deployment can serve; ``None`` (undeclared) means "not constrained".
Modality = Literal[
    "text", "vision", "audio_input", "embeddings", "image_generation", "speech", "transcription"
]
Capability = Literal["tools", "json_mode"]
ModelTag = Literal["code", "small"]


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024, description="Largest request body accepted.")
    graceful_shutdown_s: float = Field(30.0, ge=0, description="How long in-flight requests may finish on SIGTERM.")
    access_log: bool = True
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    request_id_header: str = "x-request-id"
    allow_unauthenticated: bool = Field(
        False, description="Serve on a non-loopback address without the authn stage (refused otherwise)."
    )


class TimeoutSettings(Section):
    connect_s: float = Field(5.0, gt=0, description="TCP connect to the backend.")
    first_byte_s: float = Field(60.0, gt=0, description="Until the first byte, and the longest silence mid-stream.")
    total_s: float = Field(600.0, gt=0, description="The whole exchange, streams included.")


class BackendSettings(Section):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    type: str = Field("openai", description="A backend type from routers/backends (openai, anthropic).")
    base_url: str = Field(pattern=r"^https?://", description="Up to and including the version, e.g. http://h:8000/v1")
    api_key: SecretStr | None = None
    api_key_env: str | None = Field(None, description="Read the upstream key from this environment variable.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers sent upstream.")
    timeouts: TimeoutSettings = TimeoutSettings()
    max_connections: int = Field(256, ge=1)
    keepalive_s: float = Field(
        4.0, gt=0, description="Idle upstream connections are closed after this long: keep it below the "
        "server's keep-alive (uvicorn-based servers such as vLLM close idle connections after 5 s).",
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Locality labels of its deployments: region, zone, node, provider."
    )
    default_max_tokens: int = Field(4096, ge=1, description="Anthropic: max_tokens if unset.")
    responses: Literal["translate", "native"] = Field(
        "translate", description="POST /v1/responses: translate to chat completions, or (openai type, for "
        "servers that speak the Responses API) pass it through as is.",
    )


class CostSettings(Section):
    input_per_mtok: float = Field(0.0, ge=0, description="Price of a million prompt tokens.")
    output_per_mtok: float = Field(0.0, ge=0, description="Price of a million completion tokens.")


class DeploymentSettings(Section):
    backend: str
    model: str | None = Field(None, description="The backend's name for the model; defaults to the public name.")
    weight: float = Field(1.0, gt=0)
    labels: dict[str, str] = Field(default_factory=dict, description="Merged over the backend's labels.")
    max_concurrency: int | None = Field(None, ge=1, description="Most requests in flight.")
    modalities: tuple[Modality, ...] | None = Field(None, description="Overrides the model's.")
    capabilities: tuple[Capability, ...] | None = Field(None, description="Overrides the model's.")
    context_window: int | None = Field(None, ge=1, description="Overrides the model's.")
    cost: CostSettings | None = Field(None, description="Overrides the model's.")


class ModelSettings(Section):
    name: str = Field(min_length=1)
    aliases: tuple[str, ...] = ()
    owned_by: str = "llmops"
    deployments: tuple[DeploymentSettings, ...] = Field(min_length=1)
    modalities: tuple[Modality, ...] | None = Field(None, description="Served modalities; unset: any.")
    capabilities: tuple[Capability, ...] | None = Field(None, description="Supported features; unset: any.")
    context_window: int | None = Field(None, ge=1, description="Tokens; unset: unlimited.")
    cost: CostSettings = CostSettings()
    auto: bool = Field(True, description="Whether the ``auto`` model may choose this one.")
    tags: tuple[ModelTag, ...] = Field((), description="'code' or 'small' (auto routing).")


class Settings(Section):
    server: ServerSettings = ServerSettings()
    backends: tuple[BackendSettings, ...] = ()
    models: tuple[ModelSettings, ...] = ()
    chain: tuple[str, ...] = Field((), description="Stages in order, from middleware/stages.py.")
    redis: RedisSettings = RedisSettings()
    postgres: PostgresSettings = PostgresSettings()
    auth: AuthSettings = AuthSettings()
    policy: PolicySettings = PolicySettings()
    limits: LimitsSettings = LimitsSettings()
    cache: CacheSettings = CacheSettings()
    rag: RagSettings = RagSettings()
    responses: ResponsesSettings = ResponsesSettings()
    routing: RoutingSettings = RoutingSettings()
    tools: ToolsSettings = ToolsSettings()
    mcp: McpSettings = McpSettings()
    reconcile: ReconcileSettings = ReconcileSettings()
    jobs: JobsSettings = JobsSettings()
    batches: BatchesSettings = BatchesSettings()

    @model_validator(mode="after")
    def _cross_references(self) -> Settings:
        """Every broken reference at once (one per line), so a rejected change lists all its errors."""
        found = _unique("backends", [b.name for b in self.backends])
        found += _unique("models", [n for m in self.models for n in (m.name, *m.aliases)])
        found += _unique("chain", list(self.chain))
        found += _unique("auth.static_keys", [k.key_id for k in self.auth.static_keys])
        found += _unique("mcp.servers", [s.name for s in self.mcp.servers])
        backends = {b.name for b in self.backends}
        for i, backend in enumerate(self.backends):
            if backend.responses == "native" and backend.type != "openai":
                found.append(f"backends.{i}.responses: native needs type openai (not {backend.type!r})")
        known = ", ".join(sorted(backends)) or "none"
        for i, model in enumerate(self.models):
            found += [f"models.{i}.deployments.{j}.backend: unknown backend {dep.backend!r} (known: {known})"
                      for j, dep in enumerate(model.deployments) if dep.backend not in backends]
        names = {n for m in self.models for n in (m.name, *m.aliases)}
        for source, targets in self.routing.fallbacks.items():
            found += [f"routing.fallbacks.{source}: unknown model {name!r}"
                      for name in (source, *targets) if name not in names]
        if found:
            raise ValueError("\n".join(found))
        return self


def _unique(key: str, names: list[str]) -> list[str]:
    seen: set[str] = set()
    found = []
    for name in names:
        if name in seen:
            found.append(f"{key}: duplicate name {name!r}")
        seen.add(name)
    return found
