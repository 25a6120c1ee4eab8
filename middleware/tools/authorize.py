"""Ask the policy engine about one tool call; turn its obligations into ``Grants`` and regions.

Action ``tool_call``; resource: the tool, its arguments, the secrets it would receive and the hosts it
would reach. Secrets are granted only when the obligation lists them for this call, egress only to
listed hosts, and ``allowed_tools`` (when set) must contain the tool. Without an engine every call
is denied, except tools listed in ``tools.allow_without_policy`` (which get no secrets, no egress).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from executors.spec import Grants
from gateway.kernel.context import RequestContext
from gateway.services.policy.gate import PolicyGate
from middleware.tools.catalog import ToolEntry
from middleware.tools.jobs import requested_egress

NO_ENGINE = "no policy engine is configured: tool calls are denied by default"


@dataclass(frozen=True, slots=True)
class Verdict:
    allow: bool
    reasons: tuple[str, ...] = ()
    grants: Grants = field(default_factory=Grants)
    regions: tuple[str, ...] | None = None
    decision_id: str = ""


class ToolAuthorizer:
    def __init__(
        self,
        gate: PolicyGate,
        secrets: Mapping[str, str],
        *,
        unguarded: tuple[str, ...] = (),
    ) -> None:
        self._gate = gate
        self._secrets = dict(secrets)
        self._unguarded = frozenset(unguarded)

    async def authorize(self, ctx: RequestContext, entry: ToolEntry, args: Mapping[str, Any]) -> Verdict:
        if not self._gate.configured:
            if entry.name in self._unguarded:
                return Verdict(True, ("allowed by tools.allow_without_policy",))
            return Verdict(False, (NO_ENGINE,))
        egress = requested_egress(entry, args)
        resource = {
            "model": ctx.model, "modality": "text", "tools": [entry.name],
            "tool": {"name": entry.name, "runtime": entry.spec.runtime},
            "arguments": dict(args), "secrets": list(entry.spec.secrets), "egress": egress, "vector_stores": [],
            "workspace": ctx.extension.workspace or "",  # under the subject's tenant (gateway/kernel/policy.py)
        }
        decision = await self._gate.tool(ctx, resource)
        ob = decision.obligations
        if decision.allow and ob.allowed_tools is not None and entry.name not in ob.allowed_tools:
            why = f"tool {entry.name!r} is not in the allowed tools"
            return Verdict(False, (why,), decision_id=decision.decision_id)
        if not decision.allow:
            return Verdict(False, decision.reasons or ("denied by policy",), decision_id=decision.decision_id)
        granted = {s: self._secrets[s] for s in entry.spec.secrets if s in ob.allowed_secrets and s in self._secrets}
        hosts = tuple(h for h in egress if h in ob.allowed_egress)
        return Verdict(True, decision.reasons, Grants(hosts, granted), ob.allowed_regions, decision.decision_id)
