"""``llmops usage``: requests, tokens and spend per key and tenant (from the admin API)."""

from __future__ import annotations

import argparse
from urllib.parse import urlencode

from gateway.commands.admin_client import add_connection, call, show


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection(parser)
    parser.add_argument("--tenant")
    parser.add_argument("--key-id")


def run(args: argparse.Namespace) -> int:
    params = {k: v for k, v in (("tenant", args.tenant), ("key_id", args.key_id)) if v}
    query = f"?{urlencode(params)}" if params else ""
    return show(*call(args, "GET", f"/admin/usage{query}"))
