"""A tiny admin API client for ``llmops keys`` and ``llmops usage`` (stdlib HTTP, admin bearer)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any


def add_connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=os.environ.get("LLMOPS_URL", "http://127.0.0.1:8080"),
                        help="gateway base URL (default: $LLMOPS_URL or http://127.0.0.1:8080)")
    parser.add_argument("--admin-key", default=os.environ.get("LLMOPS_ADMIN_KEY"),
                        help="a key with the admin role (default: $LLMOPS_ADMIN_KEY)")


def call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if args.admin_key:
        headers["Authorization"] = f"Bearer {args.admin_key}"
    req = urllib.request.Request(args.url.rstrip("/") + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def show(status: int, payload: Any) -> int:
    if status >= 400:
        message = payload.get("error", {}).get("message") if isinstance(payload, dict) else payload
        print(f"error {status}: {message}", file=sys.stderr)
        return 1
    print(json.dumps(payload, indent=2))
    return 0
