"""What a new desired state changes: resources added, removed or changed (by kind and name), settings that
only a restart applies, and the settings a live change actually runs (its live parts over the running rest).

Live: backends, models (their deployments), routing, static keys, the policy (Rego files, inline modules
and data), tools, MCP servers and expected node labels. Everything else (listen address, PostgreSQL and
Redis URLs, the chain, stores, limits...) is reported as needing a restart and keeps its running value.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, SecretStr

from gateway.kernel.config import Settings
from gateway.kernel.config.sections.policy import PolicySettings
from gateway.services.policy.rego import policy_files
from gateway.wiring import resolve_paths

Action = Literal["added", "removed", "changed"]

LIVE_SECTIONS = ("backends", "models", "routing", "policy", "reconcile")
LIVE_KEYS = {
    "auth": ("static_keys",),
    "mcp": ("servers",),
    "tools": ("builtin", "options", "custom", "secrets", "allow_without_policy", "max_steps", "max_time_s",
              "max_cost_usd", "steps_header"),
}

_TOOL_SETTINGS = ("allow_without_policy", "max_steps", "max_time_s", "max_cost_usd", "steps_header")


@dataclass(frozen=True, slots=True)
class Change:
    action: Action
    kind: str
    name: str

    def to_json(self) -> dict[str, str]:
        return {"action": self.action, "kind": self.kind, "name": self.name}


@dataclass(frozen=True, slots=True)
class Plan:
    changes: tuple[Change, ...]
    restart: tuple[str, ...]  # dotted keys whose new value needs a restart

    @property
    def empty(self) -> bool:
        return not self.changes and not self.restart

    def to_json(self) -> dict[str, Any]:
        return {"changes": [c.to_json() for c in self.changes], "restart_required": list(self.restart)}


def plan(running: Settings, desired: Settings) -> Plan:
    before, after = resources(running), resources(desired)
    changes = [Change("added", *key) for key in after if key not in before]
    changes += [Change("removed", *key) for key in before if key not in after]
    changes += [Change("changed", *key) for key in after if key in before and before[key] != after[key]]
    changes.sort(key=lambda c: (c.kind, c.name, c.action))
    return Plan(tuple(changes), restart_keys(running, desired))


def effective(running: Settings, desired: Settings) -> Settings:
    """``desired``'s live parts over ``running``'s: what a live change runs until the next restart."""
    update: dict[str, Any] = {name: getattr(desired, name) for name in LIVE_SECTIONS}
    for section, keys in LIVE_KEYS.items():
        current: BaseModel = getattr(running, section)
        wanted: BaseModel = getattr(desired, section)
        update[section] = current.model_copy(update={k: getattr(wanted, k) for k in keys})
    return Settings.model_validate(running.model_copy(update=update).model_dump())


def resources(settings: Settings) -> dict[tuple[str, str], str]:
    """Each declared resource by (kind, name), with a digest of its definition (secrets included, never shown)."""
    out: dict[tuple[str, str], str] = {}
    out.update({("backend", b.name): digest(b) for b in settings.backends})
    out.update({("model", m.name): digest(m) for m in settings.models})
    out.update({("key", k.key_id): digest(k) for k in settings.auth.static_keys})
    out.update(_policies(settings.policy))
    tools = settings.tools
    out.update({("tool", name): digest(tools.options.get(name)) for name in tools.builtin})
    out.update({("tool", t.name): digest(t) for t in tools.custom})
    out.update({("secret", name): digest(s) for name, s in tools.secrets.items()})
    out.update({("mcp_server", s.name): digest(s) for s in settings.mcp.servers})
    out.update({("node_labels", n.name): digest(n) for n in settings.reconcile.expected_nodes})
    out[("settings", "routing")] = digest(settings.routing)
    out[("settings", "tools")] = digest({k: getattr(tools, k) for k in _TOOL_SETTINGS})
    return out


def _policies(policy: PolicySettings) -> dict[tuple[str, str], str]:
    out = {("policy", "settings"): digest(policy.model_copy(update={"modules": {}, "data": {}}))}
    out.update({("policy", f"modules/{name}"): digest(source) for name, source in policy.modules.items()})
    if policy.data:
        out[("policy", "data")] = digest(policy.data)
    if policy.engine == "rego":
        out.update({("policy", str(f)): _file_digest(f) for f in policy_files(resolve_paths(policy.paths))})
    return out


def policy_paths(settings: Settings) -> list[Path]:
    """The policy files a running configuration reads (watched with the config files)."""
    return policy_files(resolve_paths(settings.policy.paths)) if settings.policy.engine == "rego" else []


def restart_keys(running: Settings, desired: Settings) -> tuple[str, ...]:
    """Dotted keys outside the live parts whose value differs (``server.port``, ``postgres.dsn``...)."""
    found = []
    for section in Settings.model_fields:
        if section in LIVE_SECTIONS:
            continue
        old, new = plain(getattr(running, section)), plain(getattr(desired, section))
        if not isinstance(old, dict) or not isinstance(new, dict):
            found += [section] if old != new else []
            continue
        skip = LIVE_KEYS.get(section, ())
        found += [f"{section}.{k}" for k in sorted(set(old) | set(new)) if k not in skip and old.get(k) != new.get(k)]
    return tuple(found)


def digest(value: Any) -> str:
    text = json.dumps(plain(value), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def plain(value: Any) -> Any:
    """JSON-able data of a settings value, secrets revealed (for digests and comparisons only)."""
    if isinstance(value, BaseModel):
        return {name: plain(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        return f"unreadable: {exc.strerror}"


def stamp(paths: list[Path]) -> tuple[tuple[str, int, int], ...]:
    """Modification times and sizes: what the file watch compares."""
    return tuple(_stat(p) for p in paths)


def _stat(path: Path) -> tuple[str, int, int]:
    try:
        st = path.stat()
    except OSError:
        return (str(path), -1, -1)
    return (str(path), st.st_mtime_ns, st.st_size)
