"""npm packages a test needs (MCP servers, the TypeScript SDK), pinned, installed once per session.

``npm_package`` installs into a fresh directory under the session's temp dir and returns it; a missing
node/npm or a failed install skips locally and fails in CI (``unavailable``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.processes import unavailable

_installed: dict[tuple[str, ...], Path] = {}


def npm_package(tmp_path_factory: pytest.TempPathFactory, *specs: str) -> Path:
    """The directory holding ``node_modules`` with ``specs`` (each ``name@version``) installed."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        unavailable("node and npm")
    key = tuple(sorted(specs))
    if key in _installed:
        return _installed[key]
    where = tmp_path_factory.mktemp("npm")
    (where / "package.json").write_text('{"private": true, "type": "module"}\n')
    run = subprocess.run(["npm", "install", "--no-save", "--no-audit", "--no-fund", "--loglevel=error", *specs],
                         cwd=where, capture_output=True, text=True, timeout=600)
    if run.returncode != 0:
        unavailable(f"npm install {' '.join(specs)} ({run.stderr.strip()[-400:]})")
    _installed[key] = where
    return where
