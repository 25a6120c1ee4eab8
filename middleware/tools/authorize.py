"""Ask the policy engine about one tool call; turn its obligations into ``Grants`` and regions.

Action ``tool_call``; resource: the tool, its arguments, the secrets it would receive and the hosts it
would reach. Secrets are granted only when the obligation lists them for this call, egress only to
listed hosts, and ``allowed_tools`` (when set) must contain the tool. Without an engine every call
is denied, except tools listed in ``tools.allow_without_policy`` (which get no secrets, no egress).

``http_request`` is different in two ways. Its egress grant is every host the policy grants the tool
(the node checks each redirect hop against it). Its secrets are the brokered ones (``header`` or
``query`` in ``tools.secrets``) whose configured hosts cover the URL's host: the policy sees them in
``resource.secrets``, and each one granted travels as a ``BrokeredSecret`` whose hosts are its
configured hosts that the policy's egress grant also covers. Brokered secrets never go to other tools.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from executors.spec import BrokeredSecret, Grants, host_granted
from gateway.kernel.config.sections.tools import SecretSpec
from gateway.kernel.context import RequestContext
from gateway.kernel.policy import Obligations
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
        secrets: Mapping[str, str | SecretSpec],
        *,
        unguarded: tuple[str, ...] = (),
    ) -> None:
        self._gate = gate
        self._secrets, self._brokered = _split(secrets)
        self._unguarded = frozenset(unguarded)

    async def authorize(self, ctx: RequestContext, entry: ToolEntry, args: Mapping[str, Any], *,
                        via: str | None = None) -> Verdict:
        """``via``: ``"code"`` for a call a code-mode script made (``resource.via``; absent for the model's own)."""
        if not self._gate.configured:
            if entry.name in self._unguarded:
                return Verdict(True, ("allowed by tools.allow_without_policy",))
            return Verdict(False, (NO_ENGINE,))
        egress = requested_egress(entry, args)
        secrets = self._wanted(entry, egress)
        resource = {
            "model": ctx.model, "modality": "text", "tools": [entry.name], "tool": _tool(entry),
            "arguments": dict(args), "secrets": secrets, "egress": egress, "vector_stores": [],
            "workspace": ctx.extension.workspace or "",  # under the subject's tenant (gateway/kernel/policy.py)
        }
        if via is not None:
            resource["via"] = via
        decision = await self._gate.tool(ctx, resource)
        ob = decision.obligations
        if decision.allow and ob.allowed_tools is not None and entry.name not in ob.allowed_tools:
            why = f"tool {entry.name!r} is not in the allowed tools"
            return Verdict(False, (why,), decision_id=decision.decision_id)
        if not decision.allow:
            return Verdict(False, decision.reasons or ("denied by policy",), decision_id=decision.decision_id)
        grants = self._grants(entry, egress, secrets, ob)
        return Verdict(True, decision.reasons, grants, ob.allowed_regions, decision.decision_id)

    def _wanted(self, entry: ToolEntry, egress: list[str]) -> list[str]:
        """Secret names the call would carry: brokered ones for the URL's host (http), else the tool's."""
        if entry.spec.runtime != "http":
            return list(entry.spec.secrets)
        return [n for n, s in self._brokered.items() if any(host_granted(h, s.hosts) for h in egress)]

    def _grants(self, entry: ToolEntry, egress: list[str], wanted: list[str], ob: Obligations) -> Grants:
        hosts = tuple(h for h in egress if h in ob.allowed_egress)
        if entry.spec.runtime != "http":
            # A custom container tool that declares secrets reads them inside its sandbox: the explicit
            # mode, each granted one delivered as a file at /run/secrets/NAME (never env or argv). WASI
            # modules cannot receive files this way; other runtimes never get secrets inside.
            # Brokered secrets it declares go to the node's egress proxy (executors/egress_proxy.py), which
            # injects them into the tool's HTTP for their granted hosts: the sandbox never holds them.
            granted = {s: self._secrets[s] for s in wanted if s in ob.allowed_secrets and s in self._secrets}
            files = tuple(granted) if entry.spec.runtime == "image" else ()
            proxied = {n: _brokered(self._brokered[n], hosts) for n in wanted
                       if n in ob.allowed_secrets and n in self._brokered}
            return Grants(hosts, granted, secret_files=files,
                          brokered={n: s for n, s in proxied.items() if s is not None})
        brokered = {n: _brokered(self._brokered[n], ob.allowed_egress) for n in wanted if n in ob.allowed_secrets}
        return Grants(
            tuple(dict.fromkeys((*hosts, *ob.allowed_egress))),
            brokered={n: s for n, s in brokered.items() if s is not None},
        )


def _tool(entry: ToolEntry) -> dict[str, Any]:
    """The tool as the policy sees it; an upstream MCP tool names its server and its name there."""
    if entry.upstream is None:
        return {"name": entry.name, "runtime": entry.spec.runtime}
    return {"name": entry.name, "runtime": entry.spec.runtime, "server": entry.upstream.server,
            "upstream_tool": entry.upstream.name}


def _split(secrets: Mapping[str, str | SecretSpec]) -> tuple[dict[str, str], dict[str, SecretSpec]]:
    """Plain values (a granted tool receives them) and brokered specs (only the node injects them)."""
    plain: dict[str, str] = {}
    brokered: dict[str, SecretSpec] = {}
    for name, secret in secrets.items():
        if isinstance(secret, str):
            plain[name] = secret
        elif secret.brokered:
            brokered[name] = secret
        else:
            plain[name] = secret.get_secret_value()
    return plain, brokered


def _brokered(spec: SecretSpec, allowed_egress: tuple[str, ...]) -> BrokeredSecret | None:
    """The secret as the node gets it: its configured hosts that the policy's egress grant covers."""
    hosts = tuple(h for h in spec.hosts if h in allowed_egress or host_granted(h, allowed_egress))
    if not hosts:
        return None
    return BrokeredSecret(spec.get_secret_value(), hosts, spec.header, spec.query, spec.format)
