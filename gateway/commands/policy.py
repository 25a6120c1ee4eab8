"""``llmops policy``: test and explain the embedded Rego policies.

    llmops policy test [--path config/policies]...
    llmops policy explain --tenant interns --model sim-code [--role R] [--tool T] [--action chat]
    llmops policy explain --key-id KEY --admin-key sk-... --url http://gw:8080 --model sim-code
    llmops policy explain --input document.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from gateway.commands.admin_client import add_connection, call
from gateway.kernel.context import Principal
from gateway.kernel.policy import PolicyLoadError
from gateway.kernel.policy_input import build_document
from gateway.services.policy.explain import explain, render
from gateway.services.policy.rego import RegoEvaluator, policy_files
from gateway.services.policy.testing import case_files, rego_tests, yaml_cases
from gateway.wiring import resolve_paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    test = sub.add_parser("test", help="run Rego test_ rules and YAML table cases")
    _add_policy_source(test)
    ex = sub.add_parser("explain", help="which rules fired for a key and a request, and why")
    _add_policy_source(ex)
    add_connection(ex)
    ex.add_argument("--input", help="a complete input document (JSON or YAML)")
    ex.add_argument("--tenant", default="")
    ex.add_argument("--key-id", default="cli", help="with --admin-key: the key is fetched from the gateway")
    ex.add_argument("--role", action="append", default=[], dest="roles")
    ex.add_argument("--grant", action="append", default=[], dest="grants", help="a model granted to the key")
    ex.add_argument("--do", default="chat", dest="verb", help="the action (chat, tool_call, rag_query, ...)")
    ex.add_argument("--model", default="")
    ex.add_argument("--tool", action="append", default=[], dest="tools")
    ex.add_argument("--region", default="local")
    ex.add_argument("--json", action="store_true", help="print JSON instead of text")


def _add_policy_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--path", action="append", dest="paths", help="policy directory or file (repeatable)")
    parser.add_argument("--decision", default="llmops/authz/decision")


def run(args: argparse.Namespace) -> int:
    paths = resolve_paths(tuple(args.paths or ("config/policies",)))
    try:
        evaluator = RegoEvaluator(paths, args.decision)
    except PolicyLoadError as exc:
        print(f"policy does not load: {exc}", file=sys.stderr)
        return 2
    if args.action == "test":
        return _test(evaluator, paths)
    document = _document(args)
    result = explain(evaluator, document)
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0


def _test(evaluator: RegoEvaluator, paths: tuple[str, ...]) -> int:
    results = rego_tests(evaluator, policy_files(paths)) + yaml_cases(evaluator, case_files(paths))
    for r in results:
        print(f"{'PASS' if r.passed else 'FAIL'}  {r.name}" + (f"\n      {r.detail}" if r.detail else ""))
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed or not results else 0


def _document(args: argparse.Namespace) -> dict[str, Any]:
    if args.input:
        loaded: dict[str, Any] = yaml.safe_load(Path(args.input).read_text(encoding="utf-8"))
        return loaded
    resource = {"model": args.model, "modality": "text", "tools": args.tools, "secrets": [], "egress": [],
                "vector_stores": []}
    if args.verb == "tool_call" and args.tools:
        resource["tool"] = {"name": args.tools[0]}
    return build_document(args.verb, _principal(args), resource, region=args.region, request_id="explain")


def _principal(args: argparse.Namespace) -> Principal:
    if args.admin_key and args.key_id != "cli":
        status, record = call(args, "GET", f"/admin/keys/{args.key_id}")
        if status == 200:
            return Principal(tenant=record["tenant"], key_id=record["key_id"], roles=tuple(record["roles"]),
                            models=tuple(record["models"]))
        print(f"cannot fetch key {args.key_id}: HTTP {status}", file=sys.stderr)
    return Principal(tenant=args.tenant, key_id=args.key_id, roles=tuple(args.roles), models=tuple(args.grants))
