"""The upstream key scrubber: what a backend says about the gateway's own key never gets out."""

from __future__ import annotations

import json

from routers.backends.openai import REDACTED, KeyScrubber

KEY = "sk-proj-Qm9vYmFyQmF6UXV4V2liYmxlV29iYmxlRm9vYmFyMTIz-wXyZ"


def envelope(message: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                 "code": "invalid_api_key"}}).encode()


def message_of(body: bytes) -> str:
    text: str = json.loads(body)["error"]["message"]
    return text


def test_the_raw_key_and_any_long_run_of_it_are_taken_out() -> None:
    scrub = KeyScrubber([KEY])
    for quoted in (KEY, f"Bearer {KEY}", KEY[10:30], KEY[-12:], f"key={KEY[:20]}&x=1"):
        body = scrub.body(envelope(f"Bad credential {quoted}, try another."))
        text = message_of(body)
        assert REDACTED in text and text.startswith("Bad credential ") and text.endswith(", try another."), text
        assert not any(KEY[i : i + 8] in body.decode() for i in range(len(KEY) - 7)), text


def test_openai_style_masked_quotes_are_taken_out() -> None:
    scrub = KeyScrubber([KEY])
    for masked in (f"{KEY[:6]}***{KEY[-4:]}", f"{KEY[:8]}{'*' * 40}{KEY[-4:]}", f"{KEY[:3]}...{KEY[-4:]}",
                   f"{KEY[:7]}\u2026{KEY[-4:]}"):
        hint = "You can find your API key at https://example.test/keys."
        text = message_of(scrub.body(envelope(f"Incorrect API key provided: {masked}. {hint}")))
        assert text == f"Incorrect API key provided: {REDACTED}. {hint}"
        assert KEY[-4:] not in text


def test_useful_messages_pass_untouched_and_bodies_stay_json() -> None:
    scrub = KeyScrubber([KEY])
    plain = envelope("max_tokens is too large: 99999. This model supports at most 4096 tokens... Loading...done")
    assert scrub.body(plain) is plain
    masked_other = envelope("Incorrect API key provided: ab***cd and sk-other***9876.")
    assert scrub.body(masked_other) is masked_other  # masks that are not of our key are someone else's words
    escaped = json.dumps({"error": {"message": f"line one\n{KEY}\t\"quoted\""}}).encode()
    assert json.loads(scrub.body(escaped)) == {"error": {"message": f"line one\n{REDACTED}\t\"quoted\""}}


def test_non_json_bodies_and_header_credentials() -> None:
    token = "azure-0123456789abcdef0123456789abcdef"
    scrub = KeyScrubber.of(None, {"api-key": token, "Authorization": f"Bearer {KEY}", "x-trace": "request-trace-xyz"})
    html = f"<html><body>401: key {token} / {KEY} refused; request-trace-xyz</body></html>".encode()
    out = scrub.body(html).decode()
    assert token not in out and KEY not in out and out.count(REDACTED) == 2
    assert "request-trace-xyz" in out  # only credential headers are secrets
    assert scrub.body(b"\xff\xfe not utf-8 " + KEY.encode()) == b"\xff\xfe not utf-8 " + REDACTED.encode()


def test_short_placeholders_and_no_key_change_nothing() -> None:
    body = envelope("The model EMPTY does not exist")
    assert KeyScrubber(["EMPTY"]).body(body) is body  # vLLM's placeholder key is not a secret
    assert KeyScrubber([None]).body(body) is body
