"""``llmops node token|nodes|revoke``: the node admin API from the command line (stdlib HTTP).

The admin key is read from ``$LLMOPS_ADMIN_KEY`` only, never from the command line (argv is
world-readable in ``/proc``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

ADMIN_KEY_ENV = "LLMOPS_ADMIN_KEY"


def call(url: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {os.environ.get(ADMIN_KEY_ENV, '')}"}
    req = urllib.request.Request(url.rstrip("/") + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def admin_action(args: argparse.Namespace, labels: dict[str, str]) -> int:
    """Run ``token``, ``nodes`` or ``revoke`` against ``args.control_plane``; print the answer."""
    url = args.control_plane or os.environ.get("LLMOPS_URL", "http://127.0.0.1:8080")
    if args.action == "token":
        body = {"labels": labels, "node_id": args.node_id, "ttl_s": args.ttl}
        status, answer = call(url, "POST", "/admin/nodes/tokens", body)
        if status < 300:
            print(answer["token"], flush=True)
            return 0
    elif args.action == "nodes":
        status, answer = call(url, "GET", "/admin/nodes")
    else:
        if not args.target:
            print("llmops node revoke NODE_ID", file=sys.stderr)
            return 2
        status, answer = call(url, "POST", f"/admin/nodes/{urllib.parse.quote(args.target, safe='')}/revoke")
    if status >= 300:
        print(f"error {status}: {json.dumps(answer)}", file=sys.stderr)
        return 1
    print(json.dumps(answer, indent=2))
    return 0
