"""``llmops policy explain``: for one input, the decision, every rule's value and the lines evaluated.

It re-evaluates on a clone of the engine with regorus coverage on: ``deny`` shows which deny
rules fired (their messages say why), the other rules show what they computed, and the covered
lines are the rule bodies the evaluation went through.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson

from gateway.services.policy.decision import to_decision
from gateway.services.policy.rego import RegoEvaluator


def explain(evaluator: RegoEvaluator, document: Mapping[str, Any]) -> dict[str, Any]:
    engine = evaluator.engine.clone()
    engine.set_enable_coverage(True)
    engine.set_input_json(orjson.dumps(document).decode())
    raw = engine.eval_rule(evaluator.rule)
    package = evaluator.rule.rpartition(".")[0]
    found = engine.eval_query(package).get("result") or []
    rules = found[0]["expressions"][0]["value"] if found else {}
    report = json.loads(engine.get_coverage_report_as_json())
    lines = []
    for f in report.get("files", []):
        code = f["code"].splitlines()
        lines += [f"{f['path']}:{n}: {code[n - 1].strip()}" for n in f.get("covered", []) if n <= len(code)]
    decision = to_decision(raw)
    return {
        "allow": decision.allow,
        "reasons": list(decision.reasons),
        "obligations": raw.get("obligations") if isinstance(raw, dict) else None,
        "rules": {k: _plain(v) for k, v in sorted(rules.items()) if k != "decision"},
        "evaluated": lines,
    }


def render(explained: Mapping[str, Any]) -> str:
    out = [f"decision: {'ALLOW' if explained['allow'] else 'DENY'}"]
    out += [f"  because: {r}" for r in explained["reasons"]]
    out.append(f"obligations: {json.dumps(explained['obligations'])}")
    out.append("rules (value for this input; absent = undefined):")
    out += [f"  {k} = {json.dumps(v)}" for k, v in explained["rules"].items()]
    out.append("lines evaluated:")
    out += [f"  {line}" for line in explained["evaluated"]]
    return "\n".join(out)


def _plain(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
