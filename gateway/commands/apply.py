"""``llmops apply -f PATH``: send a desired state (a config file, or a directory of YAML files merged in
name order) to a running gateway's admin API; it is applied live, or rejected whole with every error.

    llmops apply -f config/    # exit 0: applied (or nothing to change); 1: rejected, errors printed

``${ENV}`` references are resolved by the gateway, from its own environment, as for its config file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gateway.commands.admin_client import add_connection, call
from gateway.kernel.config import ConfigError
from gateway.kernel.config.loader import read_desired


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection(parser)
    parser.add_argument("-f", "--file", required=True, type=Path, help="config file or directory of YAML files")


def read(path: Path) -> dict[str, Any] | None:
    """The desired-state document, or ``None`` after printing why it cannot be read."""
    try:
        raw = read_desired(path)
    except ConfigError as exc:
        print(f"invalid configuration:\n  {exc}", file=sys.stderr)
        return None
    if raw is not None and not isinstance(raw, dict):
        print(f"invalid configuration:\n  {path}: the configuration must be a mapping", file=sys.stderr)
        return None
    return raw or {}


def failed(status: int, payload: Any) -> int:
    """Print an admin API error (every error of a rejected change); the exit code for it."""
    error = payload.get("error", {}) if isinstance(payload, dict) else {}
    errors = error.get("errors") if isinstance(error, dict) else None
    if errors:
        print(f"rejected ({status}), nothing changed:", file=sys.stderr)
        for line in errors:
            print(f"  {line}", file=sys.stderr)
    else:
        print(f"error {status}: {error.get('message') if isinstance(error, dict) else payload}", file=sys.stderr)
    return 2 if status in (401, 403) else 1


def lines(result: dict[str, Any]) -> list[str]:
    """``+ backend/sim-b``, ``- key/old``, ``~ model/sim-chat``, ``! server.port (needs a restart)``."""
    marks = {"added": "+", "removed": "-", "changed": "~"}
    out = [f"{marks.get(c['action'], '?')} {c['kind']}/{c['name']}" for c in result.get("changes", [])]
    return out + [f"! {key} (needs a restart)" for key in result.get("restart_required", [])]


def run(args: argparse.Namespace) -> int:
    desired = read(args.file)
    if desired is None:
        return 2
    status, state = call(args, "GET", "/admin/state")
    if status >= 400:
        return failed(status, state)
    status, result = call(args, "PUT", "/admin/state", {"desired": desired, "base": state["version"]})
    if status >= 400:
        return failed(status, result)
    changed = lines(result)
    for line in changed:
        print(line)
    print(f"applied: generation {result['generation']}" if result.get("changes") else "nothing to apply")
    return 0
