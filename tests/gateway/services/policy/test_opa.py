"""The remote-OPA path against an OPA-REST-compatible server (over regorus): decide, undefined, down."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from gateway.kernel.config.sections.policy import PolicySettings
from gateway.kernel.context import Principal
from gateway.kernel.observability.logging import JsonLog
from gateway.kernel.policy_input import build_document
from gateway.services.policy.opa import OpaEvaluator
from gateway.services.policy.service import PolicyService
from tests.gateway.services.policy.opa_server import running_opa


@pytest.fixture(scope="module")
def opa_url() -> Iterator[str]:
    with running_opa() as url:
        yield url


def remote(url: str, decision: str = "llmops/authz/decision", **settings: object) -> PolicyService:
    s = PolicySettings(engine="opa", opa_url=url, decision=decision, **settings)
    return PolicyService(OpaEvaluator(url, decision, s.opa_timeout_ms), s, JsonLog(io.BytesIO()))


def doc(tenant: str, model: str, action: str = "chat") -> dict[str, object]:
    return build_document(action, Principal(tenant=tenant, key_id="k"), {"model": model},  # type: ignore[arg-type]
                          region="local")


async def test_remote_decisions_match_embedded(opa_url: str) -> None:
    svc = remote(opa_url)
    assert (await svc.decide("chat", doc("research", "sim-chat"))).allow
    denied = await svc.decide("chat", doc("interns", "sim-code"))
    assert not denied.allow and denied.reasons == ('team "interns" may not use model "sim-code"',)
    await svc.evaluator.aclose()


async def test_remote_undefined_is_deny(opa_url: str) -> None:
    svc = remote(opa_url, decision="llmops/authz/nothing_here")
    d = await svc.decide("chat", doc("research", "sim-chat"))
    assert not d.allow and "undefined" in d.reasons[0]
    await svc.evaluator.aclose()


async def test_unreachable_denies_unless_fail_open() -> None:
    svc = remote("http://127.0.0.1:9", opa_timeout_ms=200, fail_open=("embeddings",))
    chat = await svc.decide("chat", doc("research", "sim-chat"))
    assert not chat.allow and "unavailable" in chat.reasons[0]
    embed = await svc.decide("embeddings", doc("research", "sim-embed", "embeddings"))
    assert embed.allow and "fail-open" in embed.reasons[0]
    await svc.evaluator.aclose()
