from __future__ import annotations

import base64

from executors.redact import Redactor, redact


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
