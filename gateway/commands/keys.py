"""``llmops keys``: manage virtual keys through the gateway's admin API (needs an admin key).

    llmops keys create --tenant research --role analyst --model 'sim-*' --rpm 60 --budget-usd 5
    llmops keys list [--tenant T]    llmops keys show ID    llmops keys revoke ID    llmops keys rotate ID

Talking to the running gateway (not to the store) keeps one code path for hashing and caches.
"""

from __future__ import annotations

import argparse
import json
from urllib.parse import quote, urlencode

from gateway.commands.admin_client import add_connection, call, show


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection(parser)
    sub = parser.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="create a key; prints the secret once")
    create.add_argument("--tenant", required=True)
    create.add_argument("--key-id")
    create.add_argument("--role", action="append", default=[], dest="roles")
    create.add_argument("--model", action="append", default=[], dest="models", help="granted model (pattern)")
    create.add_argument("--rpm", type=int)
    create.add_argument("--tpm", type=int)
    create.add_argument("--budget-usd", type=float)
    create.add_argument("--expires-in-s", type=float)
    create.add_argument("--metadata", type=json.loads, default={}, help="JSON object")
    listing = sub.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--tenant")
    for name, text in (("show", "show a key"), ("revoke", "revoke a key"), ("rotate", "new secret, old one stops")):
        sub.add_parser(name, help=text).add_argument("key_id")


def run(args: argparse.Namespace) -> int:
    if args.action == "create":
        fields = ("tenant", "key_id", "roles", "models", "rpm", "tpm", "budget_usd", "expires_in_s", "metadata")
        body = {f: getattr(args, f) for f in fields if getattr(args, f) not in (None, [], {})}
        return show(*call(args, "POST", "/admin/keys", body))
    if args.action == "list":
        query = f"?{urlencode({'tenant': args.tenant})}" if args.tenant else ""
        return show(*call(args, "GET", f"/admin/keys{query}"))
    path = f"/admin/keys/{quote(args.key_id, safe='')}"
    if args.action == "show":
        return show(*call(args, "GET", path))
    if args.action == "revoke":
        return show(*call(args, "DELETE", path))
    return show(*call(args, "POST", f"{path}/rotate"))
