"""Shared types for upstream MCP servers: a tool's definition as discovered, and a call's outcome."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SEPARATOR = "__"  # a model sees an upstream tool as f"{server}{SEPARATOR}{tool}"


@dataclass(frozen=True, slots=True)
class UpstreamTool:
    """One tool as its server lists it (MCP ``Tool``: name, description, inputSchema, annotations)."""

    server: str
    name: str
    description: str
    input_schema: Mapping[str, Any]
    annotations: Mapping[str, Any] | None = None

    @property
    def offered_name(self) -> str:
        return f"{self.server}{SEPARATOR}{self.name}"

    def definition_hash(self) -> str:
        """SHA-256 over what a model reads: name, description, input schema (canonical JSON)."""
        canonical = json.dumps(
            {"name": self.name, "description": self.description, "inputSchema": self.input_schema},
            sort_keys=True, separators=(",", ":"), ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class UpstreamResult:
    """An MCP ``CallToolResult`` as plain data, plus where it ran (stdio servers run on nodes)."""

    content: tuple[Mapping[str, Any], ...]
    is_error: bool = False
    structured: Mapping[str, Any] | None = None
    node: str | None = None
    driver: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        """What a model reads: the text blocks joined; other blocks named by type."""
        parts = [str(b.get("text", "")) if b.get("type") == "text" else f"[{b.get('type', 'content')}]"
                 for b in self.content]
        return "\n".join(parts)


def subject_id(tenant: str, key_id: str, claims: Mapping[str, Any]) -> str:
    """Whose upstream credentials a call uses: the JWT's ``sub`` when there is one, else the key, within the
    tenant. Two keys of one JWT subject share its tokens; no two tenants ever do."""
    sub = claims.get("sub")
    who = sub if isinstance(sub, str) and sub else key_id
    return f"{tenant}/{who}"
