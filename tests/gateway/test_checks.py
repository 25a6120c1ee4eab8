"""``check-config`` accepts exactly what ``serve`` starts: the same checks, against the registries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.cli import main
from tests.support.processes import ServerProcess, python_module

BASE: dict[str, Any] = {
    "backends": [{"name": "a", "base_url": "http://127.0.0.1:9/v1"}],
    "models": [{"name": "m", "deployments": [{"backend": "a"}]}],
}
KEYS = {"static_keys": [{"key": "sk-checks-0123456789abcdef", "key_id": "k", "tenant": "t"}]}
CASES: list[tuple[str, dict[str, Any], str | None]] = [
    ("the documented chain", {"chain": ["authn", "authz", "limits", "cache", "rag", "tools"], "auth": KEYS}, None),
    ("an unknown stage", {"chain": ["firewall"]}, "chain.0: unknown stage 'firewall'"),
    ("a stage not built yet", {"chain": ["guardrails"]}, "chain.0: unknown stage 'guardrails'"),
    ("tools before rag", {"chain": ["tools", "rag"]}, "chain.0: 'tools' must be the last stage"),
    ("authz before authn", {"chain": ["authz", "authn"], "auth": KEYS}, "chain.0: 'authz' must come after 'authn'"),
    ("authn with no way in", {"chain": ["authn"]}, "auth: the chain has authn but no credential can ever pass"),
    ("an unknown backend type", {"backends": [{"name": "a", "type": "grpc", "base_url": "http://h/v1"}]},
     "backends.0.type: unknown backend type 'grpc'"),
    ("an unknown driver", {"tools": {"options": {"python": {"driver": "vmware"}}}},
     "tools.options.python.driver: unknown driver 'vmware'"),
    ("a public address without authn", {"server": {"host": "0.0.0.0"}}, "server.host: refusing to serve"),
    ("a missing policy directory", {"chain": ["authz"], "policy": {"paths": ["/nonexistent/policies"]}},
     "policy.paths: no .rego files under /nonexistent/policies"),
]


def write(tmp_path: Path, name: str, extra: dict[str, Any]) -> Path:
    path = tmp_path / (name.replace(" ", "-") + ".yaml")
    path.write_text(yaml.safe_dump({**BASE, **extra}))
    return path


@pytest.mark.parametrize(("name", "extra", "problem"), CASES, ids=[c[0] for c in CASES])
def test_check_config_and_serve_agree(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str,
                                      extra: dict[str, Any], problem: str | None) -> None:
    path = write(tmp_path, name, extra)
    checked = main(["check-config", str(path)])
    if problem is None:
        assert checked == 0, capsys.readouterr().err
        # and serve starts it: a real process, listening
        ServerProcess(python_module("gateway.cli", "serve", "--config", str(path), "--port", "0"),
                      stream="stderr").start().stop()
        return
    assert checked == 1 and problem in capsys.readouterr().err
    assert main(["serve", "--config", str(path), "--port", "0"]) == 2  # refused before it binds anything
    assert problem in capsys.readouterr().err
