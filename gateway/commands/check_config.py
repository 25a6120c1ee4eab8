"""``llmops check-config FILE``: load and validate, print problems as ``key: problem``."""

from __future__ import annotations

import argparse
import sys

from gateway.checks import check
from gateway.kernel.config import ConfigError, load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="YAML configuration file")


def run(args: argparse.Namespace) -> int:
    try:
        settings = check(load_settings(args.file))
    except ConfigError as exc:
        print(f"{args.file}: invalid configuration", file=sys.stderr)
        for line in str(exc).splitlines():
            print(f"  {line}", file=sys.stderr)
        return 1
    print(
        f"{args.file}: ok ({len(settings.backends)} backends, {len(settings.models)} models, "
        f"chain: {', '.join(settings.chain) or 'empty'})"
    )
    return 0
