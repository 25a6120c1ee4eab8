"""``llmops diff -f PATH``: what applying a desired state to a running gateway would change.

    + backend/sim-b          added        - key/old       removed
    ~ model/sim-chat         changed      ! server.port   changed, but only a restart applies it

Exit code 0 when nothing would change, 1 when something would, 2 when the desired state is invalid.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway.commands.admin_client import add_connection, call
from gateway.commands.apply import failed, lines, read


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection(parser)
    parser.add_argument("-f", "--file", required=True, type=Path, help="config file or directory of YAML files")


def run(args: argparse.Namespace) -> int:
    desired = read(args.file)
    if desired is None:
        return 2
    status, result = call(args, "POST", "/admin/state/diff", {"desired": desired})
    if status >= 400:
        return max(2, failed(status, result))
    changed = lines(result)
    for line in changed:
        print(line)
    return 1 if changed else 0
