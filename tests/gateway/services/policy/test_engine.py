"""The embedded engine through PolicyService: decisions, undefined = deny, cache, reload, tooling."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from gateway.kernel.config.sections.policy import PolicySettings
from gateway.kernel.context import Principal, RequestContext
from gateway.kernel.observability.logging import JsonLog
from gateway.kernel.policy import PolicyLoadError
from gateway.kernel.policy_input import build_document, document_for, tool_names
from gateway.services.policy.explain import explain
from gateway.services.policy.rego import RegoEvaluator, policy_files
from gateway.services.policy.service import PolicyService
from gateway.services.policy.testing import case_files, rego_tests, yaml_cases
from tests.support.processes import ROOT

POLICIES = str(ROOT / "config" / "policies")


def service(paths: tuple[str, ...] = (POLICIES,), **settings: Any) -> tuple[PolicyService, io.BytesIO]:
    out = io.BytesIO()
    evaluator = RegoEvaluator(paths, "llmops/authz/decision")
    return PolicyService(evaluator, PolicySettings(**settings), JsonLog(out)), out


def doc(tenant: str = "research", model: str = "sim-chat", **extra: Any) -> dict[str, Any]:
    who = Principal(tenant=tenant, key_id="k1", roles=tuple(extra.pop("roles", ())), models=extra.pop("models", ()))
    resource = {"model": model, "tools": extra.pop("tools", [])}
    return build_document(extra.pop("action", "chat"), who, resource, region="local", request_id="r1")


async def test_allow_deny_with_reasons_and_logged_ids() -> None:
    svc, out = service()
    allowed = await svc.decide("chat", doc())
    assert allowed.allow and allowed.decision_id.startswith("dec_")
    denied = await svc.decide("chat", doc(tenant="interns", model="sim-code"))
    assert not denied.allow and denied.reasons == ('team "interns" may not use model "sim-code"',)
    assert denied.decision_id != allowed.decision_id
    svc._log.flush()
    assert denied.decision_id.encode() in out.getvalue() and b"sk-" not in out.getvalue()


async def test_obligations() -> None:
    svc, _ = service()
    d = await svc.decide("chat", doc(roles=("trial",), tools=["calculator"]))
    assert d.allow and d.obligations.max_tokens == 256 and d.obligations.allowed_tools == ("calculator",)
    assert d.obligations.allowed_regions is None and d.obligations.redact == ("email",)


async def test_undefined_is_deny(tmp_path: Path) -> None:
    (tmp_path / "p.rego").write_text("package llmops.authz\nother := 1\n")
    svc, _ = service((str(tmp_path),))
    d = await svc.decide("chat", doc())
    assert not d.allow and "undefined" in d.reasons[0]


async def test_cache_ignores_request_id_and_reload_invalidates(tmp_path: Path) -> None:
    shutil.copytree(POLICIES, tmp_path / "p")
    svc, out = service((str(tmp_path / "p"),), cache_ttl_s=60)
    first, second = doc(), doc()
    second["context"]["request_id"] = "r2"
    await svc.decide("chat", first)
    assert (await svc.decide("chat", second)).allow
    svc._log.flush()
    assert out.getvalue().count(b'"cached":true') == 1
    rego = tmp_path / "p" / "authz.rego"
    rego.write_text(rego.read_text() + '\ndeny contains "closed for maintenance" if true\n')
    os.utime(rego, ns=(1, 1))
    assert svc.reload()
    assert (await svc.decide("chat", first)).reasons == ("closed for maintenance",)
    rego.write_text("package llmops.authz\nbroken :=\n")
    with pytest.raises(PolicyLoadError):
        svc.reload()
    assert not (await svc.decide("chat", doc(model="x"))).allow  # old policy still in force


def test_default_policies_pass_their_tests() -> None:
    evaluator = RegoEvaluator((POLICIES,), "llmops/authz/decision")
    results = rego_tests(evaluator, policy_files((POLICIES,))) + yaml_cases(evaluator, case_files((POLICIES,)))
    assert len(results) >= 10
    assert [r for r in results if not r.passed] == []


def test_explain_names_the_deny_rule() -> None:
    evaluator = RegoEvaluator((POLICIES,), "llmops/authz/decision")
    out = explain(evaluator, doc(tenant="interns", model="sim-code"))
    assert not out["allow"] and out["rules"]["deny"] == ['team "interns" may not use model "sim-code"']
    assert any("team_models" in line for line in out["evaluated"])


def test_document_from_context() -> None:
    ctx = RequestContext("r", "chat", "m", {"tools": [{"type": "function", "function": {"name": "f"}}]}, {})
    d = document_for(ctx, region="eu")
    assert d["version"] == "llmops.policy/v1" and d["action"] == "chat"
    assert d["resource"]["tools"] == ["f"] and d["context"]["region"] == "eu" and d["subject"]["tenant"] == ""
    assert tool_names([{"name": "x"}, "junk", {"type": "web_search"}]) == ["x", "web_search"]


def test_a_module_that_does_not_compile_is_one_line_naming_it() -> None:
    with pytest.raises(PolicyLoadError) as caught:
        RegoEvaluator((), "llmops/authz/decision", {"bad.rego": "package p\n\nthis is not rego\n"})
    message = str(caught.value)
    assert message.startswith("policy.modules.bad.rego: bad.rego:3:1 error:")
    assert "\n" not in message and "backtrace" not in message.lower()


def test_inline_modules_and_data_decide() -> None:
    rule = "package llmops.authz\n\ndecision := {\"allow\": input.model in data.open}\n"
    evaluator = RegoEvaluator((), "llmops/authz/decision", {"inline.rego": rule}, {"open": ["m"]})
    assert evaluator.evaluate_now({"model": "m"}) == {"allow": True}
    assert evaluator.evaluate_now({"model": "x"}) == {"allow": False}
