"""The layers read from the path, and no import runs back up (walked with ``ast``, every import counts).

=========  ====================================  =============================================
layer      paths                                 may import (besides itself)
=========  ====================================  =============================================
kernel     gateway/kernel                        nothing of the project
services   gateway/services, routers/scheduler   kernel; the data plane's wire contract
stages     middleware                            kernel, services; the data plane's wire contract
router     routers                               kernel, services
root       gateway                               everything
dataplane  executors                             nothing of the control plane
simulator  simulator                             nothing of the project
=========  ====================================  =============================================
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.support.processes import ROOT

# Most specific path first: the first prefix that matches names the layer.
LAYERS: tuple[tuple[str, str], ...] = (
    ("gateway/kernel", "kernel"),
    ("gateway/services", "services"),
    ("routers/scheduler", "services"),
    ("middleware", "stages"),
    ("routers", "router"),
    ("gateway", "root"),
    ("executors", "dataplane"),
    ("simulator", "simulator"),
)
# What the control plane may use of the data plane: the job format, its signing, its errors and its
# redaction (pure: upstream MCP results are redacted like tool output).
WIRE_CONTRACT = ("executors.spec", "executors.signing", "executors.errors", "executors.tools", "executors.redact",
                 "executors.inner", "executors.node.client")
MAY_IMPORT: dict[str, frozenset[str]] = {
    "kernel": frozenset({"kernel"}),
    "services": frozenset({"kernel", "services", "wire"}),
    "stages": frozenset({"kernel", "services", "stages", "wire"}),
    "router": frozenset({"kernel", "services", "router"}),
    "root": frozenset({"kernel", "services", "stages", "router", "root", "wire", "dataplane", "simulator"}),
    "dataplane": frozenset({"dataplane"}),
    "simulator": frozenset({"simulator"}),
}


def layer_of_path(path: str) -> str | None:
    for prefix, layer in LAYERS:
        if path == prefix or path.startswith(prefix + "/"):
            return layer
    return None


def layer_of_module(module: str) -> str | None:
    if module.startswith(WIRE_CONTRACT) and module.split(".")[0] == "executors":
        if any(module == w or module.startswith(w + ".") for w in WIRE_CONTRACT):
            return "wire"
    return layer_of_path(module.replace(".", "/"))


def imports(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:  # ``from gateway import runtime`` imports gateway.runtime
                yield node.lineno, f"{node.module}.{alias.name}"


def violations() -> list[str]:
    found: list[str] = []
    for top in ("gateway", "middleware", "routers", "executors", "simulator"):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            src = layer_of_path(rel)
            assert src is not None
            for line, module in imports(path):
                dst = layer_of_module(module)
                if dst is None or dst in MAY_IMPORT[src]:
                    continue
                if dst == "wire" and src == "dataplane":
                    continue
                found.append(f"{rel}:{line}: {src} imports {module} ({dst})")
    return found


def test_every_source_file_has_a_layer() -> None:
    for top in ("gateway", "middleware", "routers", "executors", "simulator"):
        assert (ROOT / top).is_dir()
        for path in (ROOT / top).rglob("*.py"):
            assert layer_of_path(path.relative_to(ROOT).as_posix()) is not None


def test_no_import_runs_back_up() -> None:
    assert violations() == []


def test_the_walker_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from gateway.app import build_app\nimport middleware.authn.stage\n")
    seen = [m for _, m in imports(bad)]
    assert "gateway.app" in seen and "middleware.authn.stage" in seen
    assert layer_of_module("gateway.app") == "root"
    assert "root" not in MAY_IMPORT["kernel"]
    assert layer_of_module("routers.scheduler.scheduler") == "services"
    assert layer_of_module("executors.spec") == "wire"
    assert layer_of_module("executors.drivers.docker") == "dataplane"
