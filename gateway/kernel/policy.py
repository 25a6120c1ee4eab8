"""The policy contract every part of the gateway uses.

Input document (version ``llmops.policy/v1``)::

    {"version": "llmops.policy/v1",
     "subject":  {"tenant", "key_id", "roles": [...], "claims": {...}},
     "action":   "chat" | "completion" | "embeddings" | "image" | "audio" | "tool_call" | "rag_query" | "admin",
     "resource": {"model", "modality", "tools": [...], "secrets": [...], "egress": [...],
                  "vector_stores": [...], "tool": {...} (tool_call only), "arguments": {...}},
     "context":  {"region", "time", "spend": {...}, "request_id"}}

Decision: ``allow``, ``reasons`` and ``obligations`` (allowed tools, secrets, egress hosts/CIDRs,
regions, a max_tokens cap, redaction). Anything the engine cannot decide is a deny.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from gateway.kernel.context import StateKey

INPUT_VERSION = "llmops.policy/v1"

Action = Literal["chat", "completion", "embeddings", "image", "audio", "tool_call", "rag_query", "admin"]


@dataclass(frozen=True, slots=True)
class Obligations:
    """Constraints an allow comes with. ``None`` means "not constrained by policy"."""

    allowed_tools: tuple[str, ...] | None = None
    allowed_secrets: tuple[str, ...] = ()
    allowed_egress: tuple[str, ...] = ()
    allowed_regions: tuple[str, ...] | None = None
    max_tokens: int | None = None
    redact: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    allow: bool
    reasons: tuple[str, ...] = ()
    obligations: Obligations = field(default_factory=Obligations)
    decision_id: str = ""


class PolicyEngine(Protocol):
    async def decide(self, action: Action, document: Mapping[str, Any]) -> Decision:
        """Decide on a full input document (built with ``gateway.kernel.policy_input``)."""
        ...


# Shared service and per-request slots (see ``Runtime.provide`` / ``RequestContext.get``).
POLICY_ENGINE: StateKey[PolicyEngine] = StateKey("policy_engine")
DECISION: StateKey[Decision] = StateKey("policy_decision")


class PolicyUnavailable(Exception):
    """The engine could not be asked (remote OPA down or slow): the caller denies, or fails open."""


class PolicyLoadError(Exception):
    """Policy files do not compile; the previous policy stays in force."""
