"""Scrub secrets from tool output before it reaches the model or a log.

Each granted secret value becomes ``[REDACTED:NAME]`` in these forms:

- raw, reversed and rot13;
- base64 (standard and urlsafe, padded or not) and base32, including the part of the encoding
  that does not depend on where the value sat in a longer encoded string (every byte offset);
- hex, upper-, lower- or mixed-case;
- URL-encoded (``%XX`` in either case, ``+`` or ``%20`` for spaces);
- any of the above split by whitespace (spaces, tabs, line breaks) between characters.

Minimum lengths, to keep false positives away: a value shorter than ``MIN_SECRET_LENGTH`` (4) is
not redacted at all; the transformed and split forms are matched only for values of at least
``MIN_TRANSFORM_LENGTH`` (8) characters, and only encoded fragments of at least that length are
used (a 5-character value's rot13 or a 2-character base32 fragment would match ordinary text).

Well-known credential shapes (private keys, AWS keys, bearer tokens, ``sk-`` keys, GitHub and
Slack tokens, JWTs) become ``[REDACTED:pattern-name]``.
"""

from __future__ import annotations

import base64
import codecs
import re
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import quote, quote_plus

MIN_SECRET_LENGTH = 4
MIN_TRANSFORM_LENGTH = 8

PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "private-key",
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    ),
    ("aws-access-key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("openai-key", re.compile(r"\bsk-[A-Za-z0-9_-]{20,}")),
    ("github-token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}")),
    ("slack-token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("bearer", re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{16,}")),
)


def _cores(raw: bytes, encode: Callable[[bytes], bytes], bits: int, group: int) -> set[str]:
    """The characters of ``encode`` that depend only on ``raw``, for each alignment of it.

    A value encoded inside a longer string (``KEY=value`` in base64) starts at any byte offset;
    the characters wholly inside its bits are the same for a given offset whatever surrounds it.
    """
    forms = set()
    for offset in range(group):
        encoded = encode(b"\0" * offset + raw).decode()
        start = -(-8 * offset // bits)
        end = 8 * (offset + len(raw)) // bits
        forms.add(encoded[start:end])
    return forms


def exact_forms(value: str) -> set[str]:
    """Case-sensitive forms: raw, reversed, rot13, base64 (standard and urlsafe, every offset)."""
    raw = value.encode()
    forms = {value, value[::-1], codecs.encode(value, "rot13"), codecs.encode(value[::-1], "rot13")}
    forms |= {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    forms |= _cores(raw, base64.b64encode, 6, 3) | _cores(raw, base64.urlsafe_b64encode, 6, 3)
    return forms


def caseless_forms(value: str) -> set[str]:
    """Forms matched in any case: hex, base32 (every offset) and URL-encoding."""
    raw = value.encode()
    forms = {raw.hex(), raw[::-1].hex(), base64.b32encode(raw).decode()}
    forms |= _cores(raw, base64.b32encode, 5, 5)
    return forms | {quote(value, safe=""), quote_plus(value, safe="")}


def _split_tolerant(form: str) -> str:
    """A pattern for ``form`` with optional whitespace between any two characters."""
    return r"\s*".join(map(re.escape, form))


def _alternatives(name: str, value: str) -> Iterable[tuple[str, str, str]]:
    """(form, pattern, name) for every form of one secret."""
    if len(value) < MIN_TRANSFORM_LENGTH:
        yield value, re.escape(value), name
        return
    for form in exact_forms(value):
        if len(form) >= MIN_TRANSFORM_LENGTH:
            yield form, _split_tolerant(form), name
    for form in caseless_forms(value):
        if len(form) >= MIN_TRANSFORM_LENGTH:
            yield form, f"(?i:{_split_tolerant(form)})", name


class Redactor:
    """Compiled once per job: one regex alternation over every form of every granted secret.

    The alternation is guarded by a lookahead on the forms' possible first characters, which lets
    the regex engine skip most positions (about 30 ms per MiB instead of 400).
    """

    def __init__(self, secrets: Mapping[str, str]) -> None:
        found = [
            alt
            for name, value in secrets.items()
            if len(value) >= MIN_SECRET_LENGTH
            for alt in _alternatives(name, value)
        ]
        found.sort(key=lambda alt: len(alt[0]), reverse=True)  # longest first: no partial leftovers
        self._each = [(name, re.compile(pattern)) for _, pattern, name in found]
        firsts = {c for form, _, _ in found for c in (form[0], form[0].lower(), form[0].upper())}
        pattern = f"(?=[{re.escape(''.join(sorted(firsts)))}])(?:{'|'.join(p for _, p, _ in found)})"
        self._secret_re = re.compile(pattern) if found else None

    def _name(self, match: re.Match[str]) -> str:
        text = match.group(0)
        name = next((name for name, pattern in self._each if pattern.fullmatch(text)), "secret")
        return f"[REDACTED:{name}]"

    def __call__(self, text: str) -> str:
        if self._secret_re is not None:
            text = self._secret_re.sub(self._name, text)
        for name, pattern in PATTERNS:
            text = pattern.sub(f"[REDACTED:{name}]", text)
        return text


def redact(text: str, secrets: Mapping[str, str]) -> str:
    """One-shot form of ``Redactor(secrets)(text)``."""
    return Redactor(secrets)(text)
