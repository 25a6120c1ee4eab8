"""The policy contract every part of the gateway uses.

Input document (version ``llmops.policy/v1``); every field is always present, with the type shown
(never ``null``: "no model" is ``""``, "none" is ``[]``)::

    {"version": "llmops.policy/v1",
     "subject":  {"tenant": str, "key_id": str, "roles": [str], "claims": {}, "models": [str]},
     "action":   str (below),
     "resource": {"model": str, "modality": str, "tools": [str], "secrets": [str], "egress": [str],
                  "vector_stores": [str], ...per action},
     "context":  {"region": str, "time": int, "spend": {str: float}, "request_id": str}}

Actions and their resources:

===============  ==========================================================================
action           asked by / resource
===============  ==========================================================================
chat             the chain (chat, messages, responses) and the router for each model it would call;
completion       ``model`` is canonical (aliases resolved); ``""`` for ``auto`` before the
embeddings       router picks (it then asks once per candidate, and per fallback); on
image, audio     ``/v1/responses`` also ``responses`` [previous_response_id] and ``conversations``
                 [conversation] (empty lists when absent): the stored state it would read
tool_call        the tools stage, per call: ``tool`` {name, runtime}, ``arguments``, ``secrets``
                 it would receive, ``egress`` hosts it would reach, ``workspace`` it would
                 use (``llmops.workspace``, ``""`` for none; kept under the subject's tenant);
                 ``/mcp`` the same per ``tools/call``, and per tool for ``tools/list`` (no
                 arguments: the secrets and egress the tool declares; ``model`` is ``""``);
                 a call a ``code`` script made: the same, plus ``via`` = ``"code"``
rag_query        rag and vector store search: ``vector_stores`` [id]; ``model`` or ``""``
files            the Files API: ``file_id`` (``""`` on create/list)
vector_stores    the Vector Stores API: ``vector_stores`` [id] (``[]`` on create/list)
responses        stored responses (get, delete, cancel, input items, a resumed stream):
                 ``responses`` [id]
conversations    the Conversations API: ``conversations`` [id] (``[]`` on create)
models           ``/v1/models``: ``model`` is each listed model
mcp_credentials  a caller's own upstream MCP tokens (``/v1/mcp/credentials``): ``server`` (``""`` on
                 list); whose tokens is the subject itself
admin            the admin API: ``path`` (the route template)
===============  ==========================================================================

Decision: ``allow``, ``reasons`` and ``obligations`` (allowed tools, secrets, egress hosts/CIDRs,
regions, a max_tokens cap, redaction). Anything the engine cannot decide is a deny.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

INPUT_VERSION = "llmops.policy/v1"

Action = Literal["chat", "completion", "embeddings", "image", "audio", "tool_call", "rag_query", "files",
                 "vector_stores", "responses", "conversations", "models", "admin", "mcp_credentials", "batches"]


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




class PolicyUnavailable(Exception):
    """The engine could not be asked (remote OPA down or slow): the caller denies, or fails open."""


class PolicyLoadError(Exception):
    """Policy files do not compile; the previous policy stays in force."""
