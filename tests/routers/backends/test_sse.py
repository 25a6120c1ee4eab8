from __future__ import annotations

from gateway.kernel.sse import UsageSniffer

USAGE = b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}\n\n'


def test_usage_found_in_final_event() -> None:
    sniffer = UsageSniffer()
    for chunk in (b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n', USAGE, b"data: [DONE]\n\n"):
        sniffer.feed(chunk)
    assert sniffer.usage is not None and sniffer.usage.completion_tokens == 5


def test_usage_split_across_chunks() -> None:
    sniffer = UsageSniffer()
    for i in range(0, len(USAGE), 7):
        sniffer.feed(USAGE[i : i + 7])
    assert sniffer.usage is not None and sniffer.usage.total_tokens == 8


def test_null_usage_is_ignored() -> None:
    sniffer = UsageSniffer()
    sniffer.feed(b'data: {"choices":[{"delta":{}}],"usage":null}\n\n')
    assert sniffer.usage is None
