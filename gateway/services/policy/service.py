"""The ``PolicyEngine`` the gateway uses: an evaluator (Rego or OPA) + cache + ids + decision log."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from itertools import count
from typing import Any, Protocol

from gateway.kernel.config.sections.policy import PolicySettings
from gateway.kernel.observability.logging import JsonLog
from gateway.kernel.policy import Action, Decision, PolicyUnavailable
from gateway.services.policy.cache import DecisionCache, cache_key
from gateway.services.policy.decision import to_decision

UNAVAILABLE = "policy engine unavailable: denied"
FAILED_OPEN = "policy engine unavailable: allowed (fail-open for this action)"


class Evaluator(Protocol):
    async def evaluate(self, document: Mapping[str, Any]) -> Any: ...

    def reload_if_changed(self) -> bool: ...

    async def aclose(self) -> None: ...


class PolicyService:
    def __init__(self, evaluator: Evaluator, settings: PolicySettings, log: JsonLog) -> None:
        self.evaluator = evaluator
        self._settings = settings
        self._log = log
        self._cache = DecisionCache(settings.cache_size, settings.cache_ttl_s)
        self._prefix = "dec_" + os.urandom(5).hex()
        self._ids = count(1)

    async def decide(self, action: Action, document: Mapping[str, Any]) -> Decision:
        now = time.monotonic()
        key = cache_key(document) if self._cache.enabled else b""
        decision = self._cache.get(key, now) if key else None
        cached = decision is not None
        if decision is None:
            decision = await self._evaluate(action, document)
            if key and decision.reasons[:1] not in ((UNAVAILABLE,), (FAILED_OPEN,)):
                self._cache.put(key, decision, now)
        decision = dataclasses.replace(decision, decision_id=f"{self._prefix}{next(self._ids):08x}")
        self._record(action, document, decision, cached)
        return decision

    async def _evaluate(self, action: Action, document: Mapping[str, Any]) -> Decision:
        try:
            return to_decision(await self.evaluator.evaluate(document))
        except PolicyUnavailable as exc:
            self._log.warning("policy_unavailable", action=action, error=str(exc))
            if action in self._settings.fail_open:
                return Decision(True, (FAILED_OPEN,))
            return Decision(False, (UNAVAILABLE,))

    def reload(self) -> bool:
        """Recompile changed policy files and drop cached decisions; ``PolicyLoadError`` if broken."""
        changed = self.evaluator.reload_if_changed()
        if changed:
            self._cache.clear()
        return changed

    def _record(self, action: Action, document: Mapping[str, Any], decision: Decision, cached: bool) -> None:
        mode = self._settings.log_decisions
        if mode == "none" or (mode == "deny" and decision.allow):
            return
        subject = document.get("subject") or {}
        resource = document.get("resource") or {}
        context = document.get("context") or {}
        self._log.info(
            "policy_decision", decision_id=decision.decision_id, action=action, allow=decision.allow,
            reasons=decision.reasons, tenant=subject.get("tenant"), key_id=subject.get("key_id"),
            model=resource.get("model"), request_id=context.get("request_id"), cached=cached,
        )
