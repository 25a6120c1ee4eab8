"""Settings for issue 6: tools offered to models, the agent loop, nodes and the scheduler."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field, SecretStr, model_validator

from gateway.kernel.config.base import Section

# ``code`` (code mode: a Python script that calls the request's other tools, each call decided by the
# policy as the model's own would be) is not offered by default: list it in ``tools.builtin`` to offer it.
BuiltinTool = Literal["python", "shell", "http_request", "code"]


class ToolLimits(Section):
    """Per-job limits (unset = the node's defaults). Units: seconds, MiB, processes, bytes."""

    cpu_seconds: float | None = Field(None, gt=0)
    memory_mb: int | None = Field(None, gt=0)
    wall_seconds: float | None = Field(None, gt=0)
    pids: int | None = Field(None, gt=0)
    output_bytes: int | None = Field(None, gt=0)
    scratch_mb: int | None = Field(None, gt=0)


class ToolOptions(Section):
    """How a tool runs: driver (unset = the node's preference), limits, retry safety, placement."""

    driver: str | None = Field(None, description="A sandbox driver from executors/drivers (bwrap, docker, wasm).")
    limits: ToolLimits = ToolLimits()
    idempotent: bool | None = Field(None, description="Safe to re-run on another node; unset = per tool default.")
    labels: dict[str, str] = Field(default_factory=dict, description="Node labels the job requires.")
    dataset: str | None = Field(None, description="Dataset the tool reads (data locality).")


class CustomTool(ToolOptions):
    """A user-defined tool: a container ``image`` + ``command``, or a WASI ``module``."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: str = ""
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}}, description="JSON schema of the arguments."
    )
    image: str | None = None
    module: str | None = None
    command: tuple[str, ...] = ()
    secrets: tuple[str, ...] = Field((), description="Secret names the tool may receive (if policy grants).")
    egress: tuple[str, ...] = Field((), description="Hosts the tool asks to reach (if policy grants).")

    @model_validator(mode="after")
    def _one_artifact(self) -> CustomTool:
        if (self.image is None) == (self.module is None):
            raise ValueError(f"tools.custom: {self.name!r} needs exactly one of image or module")
        return self


class SecretSpec(Section):
    """A secret by name. The plain form ``NAME: ${ENV}`` is a value a granted tool receives. With
    ``header`` or ``query`` it is brokered: the node injects it into ``http_request`` calls to
    ``hosts`` only (still within the policy's egress grant for the tool), and no sandbox or model
    ever sees it."""

    value: SecretStr
    header: str | None = Field(
        None, pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", description="Header the node sets, e.g. Authorization."
    )
    query: str | None = Field(None, min_length=1, description="Query parameter the node sets, e.g. api_key.")
    format: str = Field("{value}", description="What is injected; {value} is the secret, e.g. 'Bearer {value}'.")
    hosts: tuple[str, ...] = Field((), description="Hosts, *.wildcards or CIDRs a brokered secret may go to.")

    @model_validator(mode="before")
    @classmethod
    def _plain(cls, data: Any) -> Any:
        return {"value": data} if isinstance(data, str | SecretStr) else data

    @model_validator(mode="after")
    def _where(self) -> SecretSpec:
        if self.header is not None and self.query is not None:
            raise ValueError("tools.secrets: give header or query, not both")
        if self.brokered and (not self.hosts or "{value}" not in self.format):
            raise ValueError("tools.secrets: a header or query secret needs hosts and a format with {value}")
        if self.brokered and any(c in self.format + self.get_secret_value() for c in "\r\n\0"):
            raise ValueError("tools.secrets: a header or query secret may not contain CR, LF or NUL")
        return self

    @property
    def brokered(self) -> bool:
        """Injected by the node into ``http_request`` (header or query), never handed to a tool."""
        return self.header is not None or self.query is not None

    def get_secret_value(self) -> str:
        return self.value.get_secret_value()


def _string_or_spec(schema: dict[str, Any]) -> None:
    """JSON schema of ``tools.secrets``: each value is a plain string or a ``SecretSpec``."""
    plain = {"type": "string", "format": "password", "writeOnly": True}
    schema["additionalProperties"] = {"anyOf": [plain, schema["additionalProperties"]]}


class StaticNode(Section):
    """A node known from config (no heartbeat needed; never expires)."""

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    url: str = Field(pattern=r"^https?://")
    labels: dict[str, str] = Field(default_factory=dict)
    drivers: tuple[str, ...] = ("bwrap",)
    runtimes: tuple[str, ...] = ("python", "shell", "http")
    datasets: tuple[str, ...] = ()
    slots: int = Field(2, ge=1)


class SchedulerSettings(Section):
    node_ttl_s: float = Field(15.0, gt=0, description="A node not heard from for this long is gone.")
    queue_per_tenant: int = Field(64, ge=0, description="Waiting tool jobs per tenant (and class) before 429.")
    queue_total: int = Field(1024, ge=0, description="Waiting tool jobs in all before 429.")
    queue_timeout_s: float = Field(30.0, gt=0, description="Longest wait for a node slot.")
    job_grace_s: float = Field(5.0, ge=0, description="Added to a job's wall limit as its network deadline.")
    retries: int = Field(1, ge=0, description="Re-runs of an idempotent job on another node after a node failure.")
    failure_cooldown_s: float = Field(10.0, ge=0, description="How long a failed node is avoided.")


class EnrollmentSettings(Section):
    """The node plane: per-node identities from single-use join tokens (see README, data plane)."""

    enabled: bool = Field(False, description="Accept node enrollment (join tokens from the admin API), signed "
                          "heartbeats, and send jobs to enrolled nodes over pinned TLS.")
    state_dir: str | None = Field(None, description="0700 directory for the control plane's node-signing key and "
                                  "the enrolled-node book; unset = in process (nodes enroll again after a restart).")
    token_ttl_s: float = Field(600.0, gt=0, le=86_400, description="Default lifetime of a join token.")


class ToolsSettings(Section):
    builtin: tuple[BuiltinTool, ...] = Field(
        ("python", "shell", "http_request"), description="Built-in tools offered to models; add \"code\" for code "
        "mode (a script calling the request's other tools, each call authorized by the policy; bwrap nodes only)."
    )
    options: dict[str, ToolOptions] = Field(default_factory=dict, description="Per built-in tool options.")
    custom: tuple[CustomTool, ...] = ()
    secrets: dict[str, SecretSpec] = Field(
        default_factory=dict,
        description="Secrets by name (use ${ENV}): a plain value, or {value, header|query, format, hosts} for "
        "one the node injects into http_request; either only when the policy grants it.",
        json_schema_extra=_string_or_spec,
    )
    node_secret: SecretStr | None = Field(None, description="Deprecated and trusted for nothing: setting it only "
                                          "turns the node plane on, as enrollment.enabled does.")
    enrollment: EnrollmentSettings = EnrollmentSettings()
    secret_node_labels: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="Secret name → node labels (granted by the node's join token) a node "
        "must have to be sent a job carrying that secret.",
    )
    nodes: tuple[StaticNode, ...] = ()
    scheduler: SchedulerSettings = SchedulerSettings()
    max_steps: int = Field(8, ge=1, le=64, description="Model calls per request in the agent loop.")
    max_time_s: float = Field(120.0, gt=0, description="Wall time of the whole agent loop.")
    max_cost_usd: float | None = Field(None, ge=0, description="Model spend per request (from model costs).")
    allow_without_policy: tuple[str, ...] = Field(
        (), description="Tools that run when no policy engine is configured (no secrets, no egress); "
        "otherwise every tool call is denied without an engine.",
    )
    steps_header: str = "x-llmops-tool-steps"

    @model_validator(mode="after")
    def _names(self) -> ToolsSettings:
        names = [t.name for t in self.custom]
        clash = set(names) & set(get_args(BuiltinTool)) or {n for n in names if names.count(n) > 1}
        if clash:
            raise ValueError(f"tools.custom: duplicate or reserved name {sorted(clash)[0]!r}")
        code = self.options.get("code")
        if code is not None and code.driver not in (None, "bwrap"):
            raise ValueError("tools.options.code.driver: code mode needs a tools socket in the sandbox; "
                             "only the bwrap driver binds one")
        return self
