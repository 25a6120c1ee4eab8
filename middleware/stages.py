"""The chain's stages, listed once: name → where its ``build(services)`` lives, and its place in the order.

``chain:`` in the config names stages from this table; ``check_chain`` (run by ``check-config`` and by
``serve``, through ``gateway.checks``) refuses unknown names and orders that break a stage's contract.
A stage's module is imported only when a chain names it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from gateway.kernel.chain import ChainNeeds

if TYPE_CHECKING:
    from gateway.kernel.chain import Filter
    from gateway.services.bundle import Services


Need = Literal["identity", "request_policy", "tool_policy", "limits"]


@dataclass(frozen=True, slots=True)
class StageEntry:
    name: str
    target: str  # "module:build"; build(services) -> Filter
    after: tuple[str, ...] = ()  # stages that must run before this one when both are in the chain
    last: bool = False  # nothing may follow it (it calls the rest of the chain once per model step)
    needs: tuple[Need, ...] = ()  # what the gateway must provide when the chain names this stage


STAGES: tuple[StageEntry, ...] = (
    StageEntry("authn", "middleware.authn.stage:build", needs=("identity",)),
    StageEntry("authz", "middleware.authz.stage:build", after=("authn",), needs=("request_policy", "tool_policy")),
    StageEntry("limits", "middleware.limits.stage:build", after=("authn", "authz"), needs=("limits",)),
    StageEntry("cache", "middleware.cache.stage:build", after=("authn", "authz", "limits")),
    StageEntry("rag", "middleware.rag.stage:build", after=("authn", "authz", "limits")),
    StageEntry("tools", "middleware.tools.stage:build", after=("authn", "authz", "limits"), last=True,
               needs=("tool_policy",)),
)
BY_NAME = {entry.name: entry for entry in STAGES}


def needs_of(chain: tuple[str, ...]) -> ChainNeeds:
    """What ``chain`` asks of the gateway (unknown names ask nothing; ``check_chain`` reports them)."""
    needs = {need for name in chain if name in BY_NAME for need in BY_NAME[name].needs}
    return ChainNeeds(identity="identity" in needs, request_policy="request_policy" in needs,
                      tool_policy="tool_policy" in needs, limits="limits" in needs)


def check_chain(chain: tuple[str, ...]) -> list[str]:
    """Problems with ``chain``, each as ``chain.N: ...``; empty when it is a chain ``serve`` starts."""
    problems: list[str] = []
    position = {name: i for i, name in enumerate(chain)}
    for i, name in enumerate(chain):
        entry = BY_NAME.get(name)
        if entry is None:
            problems.append(f"chain.{i}: unknown stage {name!r} (known: {', '.join(BY_NAME)})")
            continue
        for before in entry.after:
            if before in position and position[before] > i:
                problems.append(f"chain.{i}: {name!r} must come after {before!r}")
        if entry.last and i != len(chain) - 1:
            problems.append(f"chain.{i}: {name!r} must be the last stage")
    return problems


def build_stage(name: str, services: Services) -> Filter:
    module, _, attr = BY_NAME[name].target.partition(":")
    factory: Any = getattr(importlib.import_module(module), attr)
    stage: Filter = factory(services)
    return stage
