"""The suite reads nothing outside the repository: OpenAI's description is carried in tests/support."""

from __future__ import annotations

from tests.support.openapi import SPEC_PATH
from tests.support.processes import ROOT


def test_openais_description_is_carried_in_the_repository() -> None:
    assert SPEC_PATH.is_relative_to(ROOT) and SPEC_PATH.is_file()
    licence = SPEC_PATH.parent / "LICENSE"
    assert "The MIT License" in licence.read_text()


def test_only_the_support_module_names_the_description() -> None:
    readers = [path for path in ROOT.rglob("*.py")
               if ".venv" not in path.parts and path.name != "test_self_contained.py"
               and "openai-openapi" in path.read_text(errors="replace")]
    assert [p.relative_to(ROOT).as_posix() for p in readers] == ["tests/support/openapi.py"]
