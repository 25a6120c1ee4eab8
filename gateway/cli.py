"""``llmops``: the one command line. Each subcommand lives in ``gateway/commands/``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand → (module with add_arguments(parser) and run(args) -> int | None, help)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("gateway.commands.serve", "run the gateway (embedded defaults without --config)"),
    "sim": ("simulator", "run the OpenAI-compatible model simulator"),
    "check-config": ("gateway.commands.check_config", "validate a configuration file"),
    "schema": ("gateway.commands.schema", "print the configuration's JSON schema"),
    "openapi": ("gateway.commands.openapi", "print the gateway's API description (OpenAPI 3.1)"),
    "ingest": ("gateway.commands.ingest", "load files into a vector store (chunk, embed, index)"),
    "keys": ("gateway.commands.keys", "create, list, revoke and rotate virtual keys (admin API)"),
    "apply": ("gateway.commands.apply", "apply a desired state to a running gateway, live (admin API)"),
    "diff": ("gateway.commands.diff", "show what applying a desired state would change (admin API)"),
    "policy": ("gateway.commands.policy", "test and explain the Rego policies"),
    "usage": ("gateway.commands.usage", "usage and spend per key and tenant (admin API)"),
    "node": ("executors.node.cli", "run a data-plane node agent (or build its sandbox image)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmops", description="llmops-gateway: an OpenAI-compatible LLMOps gateway.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        child = sub.add_parser(name, help=help_text, description=help_text)
        child.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(child)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = importlib.import_module(args._module).run(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
