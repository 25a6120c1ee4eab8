"""The batch input file's checks, line by line (``gateway/services/batches/lines.py``)."""

from __future__ import annotations

import orjson
import pytest

from gateway.kernel.errors import InvalidRequest
from gateway.services.batches.lines import BadLine, parse_input, parse_lines

CHAT = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": []}}


def jsonl(*docs: object) -> bytes:
    return b"\n".join(orjson.dumps(d) for d in docs)


def test_requests_in_order_with_their_line_numbers_blank_lines_skipped() -> None:
    data = jsonl(CHAT) + b"\n\n" + jsonl({**CHAT, "custom_id": "b", "url": "/v1/embeddings"}) + b"\n"
    lines = parse_input(data, 10)
    assert [(li.line, li.custom_id, li.url) for li in lines] == [(1, "a", "/v1/chat/completions"),
                                                                 (3, "b", "/v1/embeddings")]
    assert lines[0].body == CHAT["body"]


@pytest.mark.parametrize(("doc", "param"), [
    ({**CHAT, "custom_id": 7}, "custom_id"),
    ({**CHAT, "custom_id": "x" * 513}, "custom_id"),
    ({**CHAT, "method": "post"}, "method"),
    ({**CHAT, "url": "/v1/completions"}, "url"),
    ({**CHAT, "body": "text"}, "body"),
    ({**CHAT, "extra": 1}, "extra"),
    ([CHAT], None),
])
def test_a_bad_line_names_its_number_and_field(doc: object, param: str | None) -> None:
    with pytest.raises(BadLine) as caught:
        parse_input(jsonl(CHAT | {"custom_id": "first"}, doc), 10)
    assert caught.value.line == 2 and caught.value.status == 400
    assert caught.value.param == "file.line[2]" + (f".{param}" if param else "")
    assert "line 2" in caught.value.message


def test_custom_ids_are_unique_and_the_file_is_bounded() -> None:
    with pytest.raises(BadLine, match="already used"):
        parse_input(jsonl(CHAT, CHAT), 10)
    with pytest.raises(InvalidRequest, match="at most 2"):
        parse_input(jsonl(*({**CHAT, "custom_id": str(n)} for n in range(3))), 2)
    with pytest.raises(InvalidRequest, match="no requests"):
        parse_input(b"\n \n", 2)
    with pytest.raises(BadLine):
        parse_input(b"\xff\xfe", 2)


def test_a_chunk_reads_its_lines_back_from_their_bytes() -> None:
    docs = [{**CHAT, "custom_id": f"c{n}"} for n in range(7)]
    data = jsonl(*docs[:3]) + b"\n\n" + jsonl(*docs[3:])  # a blank line 4, no newline at the end
    lines = parse_input(data, 10)
    assert [li.line for li in lines] == [1, 2, 3, 5, 6, 7, 8]
    for first, last in ((0, 2), (2, 5), (5, 6), (0, 6)):
        start, end = lines[first].start, lines[last].end
        again = list(parse_lines(data[start:end], lines[first].line, start))
        assert again == lines[first:last + 1]
