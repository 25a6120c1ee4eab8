from __future__ import annotations

import pytest

from gateway.services.vectorstores.extract import UnsupportedFile, extract_text
from tests.gateway.services.vectorstores.fixtures import DOCUMENTS


def test_text_and_markdown_are_kept_verbatim() -> None:
    assert extract_text("zebras.txt", DOCUMENTS["zebras.txt"]).startswith("Zebras are African")
    assert "Mount Etna" in extract_text("volcano.md", DOCUMENTS["volcano.md"])


def test_html_drops_markup_and_scripts() -> None:
    text = extract_text("bread.html", DOCUMENTS["bread.html"])
    assert "Sourdough bread is leavened" in text
    assert "SECRET" not in text and "<p>" not in text


def test_pdf_text_is_extracted() -> None:
    text = extract_text("comet.pdf", DOCUMENTS["comet.pdf"])
    assert "Comet is visible" in text and "1986" in text


@pytest.mark.parametrize(("name", "data"), [("a.exe", b"MZ\x90"), ("a.txt", b"\xff\xfe\xfa"),
                                            ("a.pdf", b"%PDF-1.4 broken")])
def test_unsupported_or_broken_files_are_rejected(name: str, data: bytes) -> None:
    with pytest.raises(UnsupportedFile):
        extract_text(name, data)
