"""Settings for issue 13: upstream MCP servers whose tools the gateway offers to models and MCP clients."""

from __future__ import annotations

import base64
import binascii
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from gateway.kernel.config.base import Section
from gateway.kernel.config.sections.tools import ToolOptions


class McpOAuth(Section):
    """OAuth 2.1 (authorization code with PKCE) for a ``per_subject`` server: each caller signs in once
    (``POST /v1/mcp/oauth/{server}/authorize``); the access token (refreshed when it expires) is stored as
    that subject's token for the server."""

    authorize_url: str = Field(pattern=r"^https?://", description="The authorization server's authorization "
                               "endpoint.")
    token_url: str = Field(pattern=r"^https?://", description="Its token endpoint.")
    client_id: str = Field(min_length=1)
    client_secret: SecretStr | None = Field(None, description="For a confidential client (sent in the token "
                                            "request's body); use ${ENV}.")
    scopes: tuple[str, ...] = ()
    redirect_uri: str = Field(pattern=r"^https?://", description="This gateway's /v1/mcp/oauth/callback as the "
                              "caller's browser reaches it (registered with the authorization server).")
    resource: str | None = Field(None, description="RFC 8707 resource indicator; unset = the server's url.")
    state_ttl_s: float = Field(600.0, gt=0, le=86_400, description="How long a sign-in may take.")


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
    oauth: McpOAuth | None = Field(None, description="credential per_subject: tokens obtained by OAuth sign-in.")

    @model_validator(mode="after")
    def _one_transport(self) -> McpServer:
        if (self.url is None) == (not self.command):
            raise ValueError(f"mcp.servers: {self.name!r} needs exactly one of url or command")
        if self.credential == "static" and not self.secret:
            raise ValueError(f"mcp.servers: {self.name!r} has credential static but no secret")
        if self.oauth is not None and self.credential != "per_subject":
            raise ValueError(f"mcp.servers: {self.name!r} has oauth but credential {self.credential}, not per_subject")
        if "{value}" not in self.format:
            raise ValueError(f"mcp.servers: {self.name!r} format needs {{value}}")
        return self


class McpSettings(Section):
    servers: tuple[McpServer, ...] = ()
    credentials_key: SecretStr | None = Field(
        None, description="Key (32 bytes, base64) that encrypts per-subject upstream tokens at rest; use ${ENV}.")
    list_ttl_s: float = Field(300.0, ge=0, description="How long an upstream's tool list is cached.")
    list_timeout_s: float = Field(10.0, gt=0, description="How long listing one upstream's tools may take; a server "
                                  "slower than this is left out of that listing (and its tools of that request).")
    scan: Literal["block", "flag", "off"] = Field(
        "block", description="Tool descriptions carrying instructions aimed at the model: withheld, flagged or not "
        "checked.")
    approval: Literal["first_use", "admin"] = Field(
        "first_use", description="How a tool's definition is first pinned: trusted when first seen (first_use), or "
        "withheld until an admin approves it (admin). A changed definition always waits for re-approval "
        "(see each server's on_change).")
    pins_ttl_s: float = Field(5.0, ge=0, description="How long a replica caches the pinned definitions it read "
                              "(an approval on another replica is seen within this).")

    @model_validator(mode="after")
    def _key(self) -> McpSettings:
        if self.credentials_key is not None:
            credentials_key_bytes(self.credentials_key)
        elif any(s.credential == "per_subject" for s in self.servers):
            raise ValueError("mcp.credentials_key: servers with credential per_subject need a key to encrypt "
                             "their tokens (32 bytes, base64)")
        return self


def credentials_key_bytes(key: SecretStr) -> bytes:
    """The 32-byte AES key in ``mcp.credentials_key``; a ``ValueError`` naming the key (never its value)."""
    try:
        raw = base64.b64decode(key.get_secret_value().strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("mcp.credentials_key: not base64 (generate one with: openssl rand -base64 32)") from None
    if len(raw) != 32:
        raise ValueError(f"mcp.credentials_key: must decode to 32 bytes, got {len(raw)} "
                         "(generate one with: openssl rand -base64 32)")
    return raw
