"""``llmops policy test``: Rego ``test_`` rules, and YAML table cases (input → expected decision).

A case file (``*.yaml`` under a policy path)::

    defaults: {...a base input document...}
    cases:
      - name: interns only get sim-chat
        input: {subject: {tenant: interns}, resource: {model: sim-code}}   # deep-merged over defaults
        expect: {allow: false, reasons: [...], obligations: {max_tokens: 256}}

``reasons`` must match exactly (as a set); ``obligations`` lists only the fields to check.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from gateway.services.policy.decision import to_decision
from gateway.services.policy.rego import RegoEvaluator

_PACKAGE = re.compile(r"^package\s+([\w.]+)", re.MULTILINE)
_TEST_RULE = re.compile(r"^(test_\w+)\b", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Result:
    name: str
    passed: bool
    detail: str = ""


def rego_tests(evaluator: RegoEvaluator, files: Iterable[Path]) -> list[Result]:
    results: list[Result] = []
    for f in files:
        if f.suffix != ".rego":
            continue
        text = f.read_text(encoding="utf-8")
        package = _PACKAGE.search(text)
        if package is None:
            continue
        for name in dict.fromkeys(_TEST_RULE.findall(text)):
            try:
                value = evaluator.engine.eval_rule(f"data.{package.group(1)}.{name}")
            except RuntimeError as exc:
                results.append(Result(f"{f.name}:{name}", False, str(exc).splitlines()[0]))
                continue
            results.append(Result(f"{f.name}:{name}", value is True, "" if value is True else f"got {value!r}"))
    return results


def case_files(paths: Iterable[str]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        found.extend(sorted(p.rglob("*.yaml")) if p.is_dir() else [p] if p.suffix in (".yaml", ".yml") else [])
    return found


def yaml_cases(evaluator: RegoEvaluator, files: Iterable[Path]) -> list[Result]:
    results: list[Result] = []
    for f in files:
        spec = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
        defaults = spec.get("defaults") or {}
        for i, case in enumerate(spec.get("cases") or []):
            name = f"{f.name}:{case.get('name', i)}"
            document = deep_merge(defaults, case.get("input") or {})
            decision = to_decision(evaluator.evaluate_now(document))
            problems = mismatches(asdict(decision), case.get("expect") or {})
            results.append(Result(name, not problems, "; ".join(problems)))
    return results


def mismatches(actual: Mapping[str, Any], expect: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    if "allow" in expect and actual["allow"] != expect["allow"]:
        problems.append(f"allow: expected {expect['allow']}, got {actual['allow']} (reasons: {actual['reasons']})")
    if "reasons" in expect and set(actual["reasons"]) != set(expect["reasons"]):
        problems.append(f"reasons: expected {sorted(expect['reasons'])}, got {list(actual['reasons'])}")
    for key, want in (expect.get("obligations") or {}).items():
        got = actual["obligations"].get(key)
        if _norm(got) != _norm(want):
            problems.append(f"obligations.{key}: expected {want!r}, got {got!r}")
    return problems


def deep_merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{k: deep_merge(base.get(k), v) for k, v in override.items()}}
    return override


def _norm(value: Any) -> Any:
    return sorted(value) if isinstance(value, (list, tuple)) else value
