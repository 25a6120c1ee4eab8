"""Settings for issue 13: upstream MCP servers whose tools the gateway offers to models and MCP clients."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from gateway.kernel.config.base import Section
from gateway.kernel.config.sections.tools import ToolOptions


class McpServer(Section):
    """One upstream MCP server: a streamable-HTTP ``url``, or a stdio ``command`` run in a sandbox on a node.

    Its tools are offered as ``{name}__{tool}``. ``credential`` says how the gateway authenticates to it:
    ``none``; ``static`` (the secret ``secret`` from ``tools.secrets``, for every caller); or ``per_subject``
    (each caller's own token, stored encrypted and keyed by (subject, server); a caller without one is refused).
    """

    name: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9-]+$")
    description: str = ""
    url: str | None = Field(None, pattern=r"^https?://", description="Streamable-HTTP endpoint of the server.")
    command: tuple[str, ...] = Field((), description="stdio server: argv run in a sandbox on a data-plane node.")
    credential: Literal["none", "static", "per_subject"] = "none"
    secret: str | None = Field(None, description="With credential static: a name in tools.secrets.")
    header: str = Field("Authorization", description="Header that carries the credential (HTTP servers).")
    token_env: str = Field("MCP_TOKEN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="stdio servers: the "
                           "environment variable the server reads the credential from (never in its argv).")
    format: str = Field("Bearer {value}", description="What is sent in the header; {value} is the token.")
    allowed_tools: tuple[str, ...] | None = Field(None, description="Only these of the server's tools; unset = all.")
    on_change: Literal["block", "flag"] = Field(
        "block", description="A tool whose definition changed since it was approved: blocked until re-approved, "
        "or offered and flagged.")
    options: ToolOptions = Field(ToolOptions(), description="stdio servers: driver, limits, node labels.")
    egress: tuple[str, ...] = Field((), description="stdio servers: hosts the server asks to reach (if policy grants).")

    @model_validator(mode="after")
    def _one_transport(self) -> McpServer:
        if (self.url is None) == (not self.command):
            raise ValueError(f"mcp.servers: {self.name!r} needs exactly one of url or command")
        if self.credential == "static" and not self.secret:
            raise ValueError(f"mcp.servers: {self.name!r} has credential static but no secret")
        if "{value}" not in self.format:
            raise ValueError(f"mcp.servers: {self.name!r} format needs {{value}}")
        return self


class McpSettings(Section):
    servers: tuple[McpServer, ...] = ()
    credentials_key: SecretStr | None = Field(
        None, description="Key (32 bytes, base64) that encrypts per-subject upstream tokens at rest; use ${ENV}.")
    list_ttl_s: float = Field(300.0, ge=0, description="How long an upstream's tool list is cached.")
    scan: Literal["block", "flag", "off"] = Field(
        "block", description="Tool descriptions carrying instructions aimed at the model: withheld, flagged or not "
        "checked.")
