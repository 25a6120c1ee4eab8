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
