"""The suite reads nothing outside the repository: a user's fresh clone has no ``../shared``."""

from __future__ import annotations

from tests.support.openapi import SPEC_PATH
from tests.support.processes import ROOT


def test_openais_description_is_carried_in_the_repository() -> None:
    assert SPEC_PATH.is_relative_to(ROOT) and SPEC_PATH.is_file()
    licence = SPEC_PATH.parent / "LICENSE"
    assert "The MIT License" in licence.read_text()


def test_no_file_reaches_outside_the_repository() -> None:
    needle = "shared" + "/openai-openapi"
    for path in ROOT.rglob("*"):
        if path.suffix in {".py", ".sh", ".toml"} and ".venv" not in path.parts and ".git" not in path.parts:
            assert needle not in path.read_text(errors="replace"), path
