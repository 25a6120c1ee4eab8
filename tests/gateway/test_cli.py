from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main


def test_check_config_accepts_a_valid_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(
        "backends: [{name: a, base_url: 'http://h/v1'}]\nmodels: [{name: m, deployments: [{backend: a}]}]\n"
    )
    assert main(["check-config", str(path)]) == 0
    assert "ok (1 backends, 1 models" in capsys.readouterr().out


def test_check_config_names_the_bad_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("server: {port: -1}\n")
    assert main(["check-config", str(path)]) == 1
    assert "server.port" in capsys.readouterr().err


def test_serve_refuses_a_public_address_without_authentication(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "open.yaml"
    path.write_text(
        "backends: [{name: a, base_url: 'http://h/v1'}]\nmodels: [{name: m, deployments: [{backend: a}]}]\n"
    )
    assert main(["serve", "--config", str(path), "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "refusing to serve on 0.0.0.0 without authentication" in capsys.readouterr().err


def test_public_address_is_fine_with_authn_or_an_explicit_opt_out() -> None:
    from gateway.checks import exposed_without_auth
    from gateway.kernel.config import settings_from_mapping

    assert not exposed_without_auth(settings_from_mapping({}, {}))  # 127.0.0.1
    assert exposed_without_auth(settings_from_mapping({"server": {"host": "0.0.0.0"}}, {}))
    assert not exposed_without_auth(settings_from_mapping({"server": {"host": "0.0.0.0"}, "chain": ["authn"]}, {}))
    opted = settings_from_mapping({"server": {"host": "0.0.0.0", "allow_unauthenticated": True}}, {})
    assert not exposed_without_auth(opted)
