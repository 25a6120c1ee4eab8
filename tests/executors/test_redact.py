from __future__ import annotations

import base64
import codecs
from urllib.parse import quote

import pytest

from executors.redact import MIN_SECRET_LENGTH, MIN_TRANSFORM_LENGTH, Redactor, redact


def test_granted_secret_and_its_encodings_are_redacted() -> None:
    secret = "hunter2-very-secret"
    text = f"a {secret} b {base64.b64encode(secret.encode()).decode()} c {secret.encode().hex()}"
    out = redact(text, {"API_KEY": secret})
    assert secret not in out and "aHVudGVy" not in out
    assert out.count("[REDACTED:API_KEY]") == 3


def test_common_key_patterns_are_redacted() -> None:
    text = "AKIAABCDEFGHIJKLMNOP sk-abcdefghijklmnopqrstuvwxyz123 Bearer abcdefghijklmnop.qrstu"
    out = Redactor({})(text)
    assert "AKIA" not in out and "sk-abc" not in out and "abcdefghijklmnop.qrstu" not in out


def test_plain_text_is_untouched() -> None:
    assert redact("hello world", {"K": "unrelated-value"}) == "hello world"


SECRET = "Zq9-hunter2+Secret/Val"  # has letters, digits and characters URL-encoding changes


def _transforms(value: str) -> dict[str, str]:
    raw = value.encode()
    return {
        "reversed": value[::-1],
        "upper hex": raw.hex().upper(),
        "mixed hex": "".join(c.upper() if i % 3 else c for i, c in enumerate(raw.hex())),
        "base32": base64.b32encode(raw).decode(),
        "base32 unpadded lower": base64.b32encode(raw).decode().rstrip("=").lower(),
        "rot13": codecs.encode(value, "rot13"),
        "url-encoded": quote(value, safe=""),
        "url-encoded lower": quote(value, safe="").lower(),
        "split across lines": value[:6] + "\n" + value[6:13] + "\r\n" + value[13:],
        "split by spaces": " ".join(value),
        "upper hex split in words": " ".join(raw.hex().upper()[i : i + 8] for i in range(0, 2 * len(raw), 8)),
        "base64 inside a longer base64": base64.b64encode(b"API_KEY=" + raw + b"\n").decode(),
        "base32 inside a longer base32": base64.b32encode(b"k=" + raw).decode(),
    }


@pytest.mark.parametrize("form", list(_transforms(SECRET)))
def test_each_common_transform_of_a_secret_is_redacted(form: str) -> None:
    transformed = _transforms(SECRET)[form]
    out = redact(f"before {transformed} after", {"API_KEY": SECRET})
    assert "[REDACTED:API_KEY]" in out, out
    assert out.startswith("before ") and out.endswith(" after")
    assert transformed not in out


def test_the_secret_name_of_each_match_is_kept_apart() -> None:
    out = redact(f"{SECRET[::-1]} / {b'other-secret-1'.hex().upper()}", {"A": SECRET, "B": "other-secret-1"})
    assert out == "[REDACTED:A] / [REDACTED:B]"


def test_short_secrets_are_matched_only_raw() -> None:
    # Under MIN_TRANSFORM_LENGTH the transforms of a value are ordinary words ("abc1" reversed,
    # "pass" in rot13 is "cnff"); under MIN_SECRET_LENGTH even the raw value is.
    assert MIN_SECRET_LENGTH == 4 and MIN_TRANSFORM_LENGTH == 8
    assert redact("use 1cba here, pass cnff", {"K": "abc1", "P": "pass"}) == "use 1cba here, [REDACTED:P] cnff"
    assert redact("a b c d e f g", {"K": "abcdefg"}) == "a b c d e f g"
    assert redact("x 123 y", {"K": "123"}) == "x 123 y"
