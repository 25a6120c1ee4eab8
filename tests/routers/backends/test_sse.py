from __future__ import annotations

from gateway.kernel.sse import SseSplitter, UsageSniffer, data_of

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


def test_splitter_takes_crlf_and_cr_line_ends_cut_anywhere() -> None:
    """sse-starlette (the MCP SDK's servers) ends lines with CRLF; a chunk may end between CR and LF."""
    stream = b'event: message\r\ndata: {"a":1}\r\n\r\ndata: {"b":2}\r\rdata: [DONE]\n\n'
    for size in (1, 2, 3, 7, len(stream)):
        split = SseSplitter()
        events = [e for i in range(0, len(stream), size) for e in split.feed(stream[i : i + size])]
        assert [data_of(e) for e in events] == [b'{"a":1}', b'{"b":2}', b"[DONE]"], size
        assert events[0] == b'event: message\ndata: {"a":1}'
