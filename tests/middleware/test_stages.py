"""The stage table: what a chain asks of the gateway is read from its stages, in one place."""

from __future__ import annotations

import ast

from gateway.kernel.chain import ChainNeeds
from middleware.stages import BY_NAME, needs_of
from tests.support.processes import ROOT


def test_needs_follow_the_stages_named() -> None:
    assert needs_of(()) == ChainNeeds()
    assert needs_of(("authn",)) == ChainNeeds(identity=True)
    assert needs_of(("authn", "authz", "limits")) == ChainNeeds(True, True, True, True)
    assert needs_of(("tools",)) == ChainNeeds(tool_policy=True)
    assert needs_of(("cache", "rag", "nonsense")) == ChainNeeds()


def test_every_need_is_provided_by_some_stage() -> None:
    named = {need for entry in BY_NAME.values() for need in entry.needs}
    assert named == set(ChainNeeds.__dataclass_fields__)


def _tests_a_stage_name(node: ast.AST) -> bool:
    """``"authn" in <anything>`` (or ``not in``) with a stage's name on the left."""
    return (isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant) and node.left.value in BY_NAME
            and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops))


def test_the_root_never_decides_by_stage_names() -> None:
    offenders = []
    for path in sorted((ROOT / "gateway").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        offenders += [f"{path.relative_to(ROOT)}:{getattr(n, 'lineno', 0)}" for n in ast.walk(tree)
                      if _tests_a_stage_name(n)]
    assert offenders == [], "read middleware.stages.needs_of (Services.needs) instead: " + ", ".join(offenders)


def test_the_check_sees_a_planted_test() -> None:
    planted = ast.parse('if "authn" in settings.chain: pass')
    assert any(_tests_a_stage_name(n) for n in ast.walk(planted))
    assert not any(_tests_a_stage_name(n) for n in ast.walk(ast.parse('if "x" in y: pass')))


