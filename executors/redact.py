"""Scrub secrets from tool output before it reaches the model or a log.

Granted secret values (raw, base64, urlsafe base64 and hex forms) become ``[REDACTED:NAME]``;
well-known credential shapes (private keys, AWS keys, bearer tokens, ``sk-`` keys, GitHub and
Slack tokens, JWTs) become ``[REDACTED:pattern-name]``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping

MIN_SECRET_LENGTH = 4

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


def _forms(value: str) -> list[str]:
    raw = value.encode()
    forms = {
        value,
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        raw.hex(),
    }
    return sorted((f for f in forms if len(f) >= MIN_SECRET_LENGTH), key=len, reverse=True)


class Redactor:
    """Compiled once per job: one regex alternation over every form of every granted secret."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        self._names: dict[str, str] = {}
        for name, value in secrets.items():
            if len(value) < MIN_SECRET_LENGTH:
                continue
            for form in _forms(value):
                self._names.setdefault(form, name)
        ordered = sorted(self._names, key=len, reverse=True)
        self._secret_re = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        if self._secret_re is not None:
            text = self._secret_re.sub(lambda m: f"[REDACTED:{self._names[m.group(0)]}]", text)
        for name, pattern in PATTERNS:
            text = pattern.sub(f"[REDACTED:{name}]", text)
        return text


def redact(text: str, secrets: Mapping[str, str]) -> str:
    """One-shot form of ``Redactor(secrets)(text)``."""
    return Redactor(secrets)(text)
