"""``llmops openapi``: print the gateway's API description (OpenAPI 3.1), as ``GET /openapi.json`` serves it.

The description follows the configuration (node routes appear with ``tools.enrollment``, usage with
``limits``), so the routes are built from it exactly as ``serve`` builds them, then closed; nothing listens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

from gateway.app import description, route_table, routes
from gateway.embedded import default_config
from gateway.kernel.config import ConfigError, Settings, load_settings, settings_from_mapping
from gateway.kernel.observability.logging import JsonLog
from gateway.kernel.observability.metrics import Metrics
from gateway.reconcile.controller import Reconciler
from gateway.reconcile.switch import Switch
from gateway.wiring import STARTUP_ERRORS, Gateway, startup_message


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", default=os.environ.get("LLMOPS_CONFIG"),
                        help="YAML configuration (default: $LLMOPS_CONFIG, else embedded defaults)")
    parser.add_argument("--output", "-o", help="write to this file instead of stdout")


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config) if args.config else settings_from_mapping(
            default_config("http://127.0.0.1:9/simulator", os.environ))
        document = asyncio.run(_describe(settings))
    except ConfigError as exc:
        print(f"invalid configuration: {exc}", file=sys.stderr)
        return 2
    except STARTUP_ERRORS as exc:
        print(f"cannot describe: {startup_message(exc)}", file=sys.stderr)
        return 2
    text = json.dumps(document, indent=2) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        print(text, end="")
    return 0


async def _describe(settings: Settings) -> dict[str, Any]:
    gateway = Gateway(settings, JsonLog(sys.stderr.buffer, level="error"), Metrics())
    Reconciler(gateway, Switch(), route_table, None, lambda desired: desired)  # /admin/state, as serve has it
    try:
        await gateway.start()
        return description(gateway, routes(gateway))
    finally:
        await gateway.aclose()
