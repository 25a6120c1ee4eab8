"""Plain text out of text, Markdown, HTML and PDF files."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser

from gateway.kernel.errors import InvalidRequest

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst", ".csv", ".json", ".py", ".log")
HTML_SUFFIXES = (".html", ".htm", ".xhtml")


class UnsupportedFile(InvalidRequest):
    default_code = "unsupported_file"


def extract_text(filename: str, data: bytes) -> str:
    """Raises ``UnsupportedFile`` for other formats or unreadable content. NUL characters, which carry
    no text and which PostgreSQL refuses, are dropped."""
    return _extract(filename, data).replace("\x00", "")


def _extract(filename: str, data: bytes) -> str:
    name = filename.lower()
    if name.endswith(".pdf") or data.startswith(b"%PDF-"):
        return _pdf(data)
    text = _decode(data)
    if name.endswith(HTML_SUFFIXES) or _looks_like_html(text):
        return _html(text)
    if name.endswith(TEXT_SUFFIXES) or "." not in name:
        return text
    raise UnsupportedFile(f"Files of type {name.rsplit('.', 1)[-1]!r} are not supported for retrieval.")


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnsupportedFile("The file is not valid UTF-8 text.") from None


def _looks_like_html(text: str) -> bool:
    head = text[:512].lstrip().lower()
    return head.startswith(("<!doctype html", "<html"))


def _pdf(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise UnsupportedFile(f"The PDF could not be read ({type(exc).__name__}).") from None
    return "\n\n".join(p.strip() for p in pages if p.strip())


class _TextOfHtml(HTMLParser):
    _SKIP = frozenset({"script", "style", "noscript", "template", "head"})
    _BLOCK = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _html(text: str) -> str:
    parser = _TextOfHtml()
    parser.feed(text)
    parser.close()
    joined = "".join(parser.parts)
    lines = (re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in joined.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
