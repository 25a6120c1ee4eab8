"""What a sandbox adds for an ``mcp_stdio`` job: the bridge as its program, and the server code's directories.

The job's program is ``executors/mcp_bridge.py`` (stdlib only), bound read-only at ``/job/main`` like any
program; the server's argv follows it. Besides the system directories every sandbox gets, the server
sees the directories the node's operator allows for MCP server code (``llmops node --mcp-path DIR``,
repeatable), read-only and at the same path; the control plane can name a command but never mount a
host path. Its workspace (or a sized tmpfs) is ``/scratch``, its home and its working directory.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from executors.drivers.base import EGRESS_MOUNT, SCRATCH, SECRETS_DIR
from executors.errors import ExecutorError

BRIDGE = Path(__file__).resolve().parent.parent / "mcp_bridge.py"
# Paths the sandbox builds itself: an operator's directory may not shadow or contain them.
RESERVED = ("/proc", "/dev", SCRATCH, "/job", SECRETS_DIR, EGRESS_MOUNT, "/run")


@functools.cache
def bridge_source() -> str:
    return BRIDGE.read_text()


def bridge_command(python: str, argv: Sequence[str]) -> list[str]:
    """The sandbox's command: the bridge at ``/job/main``, then the server's argv."""
    return [python, "-I", "-S", "/job/main", "--", *argv]


def _within(path: str, other: str) -> bool:
    return path == other or path.startswith(other.rstrip("/") + "/")


def check_paths(paths: Iterable[str | Path], workspace_root: Path | None = None) -> tuple[str, ...]:
    """The operator's MCP code directories, checked: absolute, existing, no symlink, not ``/``, clear of
    the sandbox's own paths and of the workspace root (other tenants' workspaces live there).

    Raises ``ExecutorError`` naming the first bad one.
    """
    checked: list[str] = []
    for raw in paths:
        path = os.path.normpath(str(raw))
        if not os.path.isabs(path) or path == "/":
            raise ExecutorError(f"--mcp-path {raw}: must be an absolute directory other than /")
        if os.path.realpath(path) != path or not os.path.isdir(path):
            raise ExecutorError(f"--mcp-path {raw}: not an existing directory (symlinks are not followed)")
        clash = next((r for r in RESERVED if _within(path, r) or _within(r, path)), None)
        if clash is not None:
            raise ExecutorError(f"--mcp-path {raw}: overlaps {clash}, which the sandbox builds itself")
        root = os.path.realpath(workspace_root) if workspace_root is not None else None
        if root is not None and (_within(path, root) or _within(root, path)):
            raise ExecutorError(f"--mcp-path {raw}: overlaps the workspace root {root}")
        checked.append(path)
    return tuple(checked)


def bind_args(paths: Sequence[str]) -> list[str]:
    """bwrap arguments binding each directory read-only at its own path."""
    args: list[str] = []
    for path in paths:
        args += ["--ro-bind", path, path]
    return args
