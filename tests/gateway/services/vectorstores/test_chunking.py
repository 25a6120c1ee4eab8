from __future__ import annotations

import pytest

from gateway.kernel.errors import InvalidRequest
from gateway.services.vectorstores.chunking import Chunking, parse_chunking
from gateway.services.vectorstores.ingest import make_chunker

AUTO = Chunking(800, 400)


def test_short_text_is_one_chunk() -> None:
    assert make_chunker().split("A short note.", AUTO) == ["A short note."]


def test_windows_overlap_and_cover_the_text() -> None:
    words = [f"w{i}" for i in range(1000)]
    chunks = make_chunker().split(" ".join(words), Chunking(100, 50))
    assert len(chunks) > 10
    assert chunks[0].split()[0] == "w0" and chunks[-1].split()[-1] == "w999"
    second = chunks[1].split()
    assert second[0] in chunks[0]  # the next window starts inside the previous one


def test_chunking_strategy_parameter() -> None:
    assert parse_chunking(None, AUTO) == AUTO
    assert parse_chunking({"type": "auto"}, AUTO) == AUTO
    static = {"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 100}}
    assert parse_chunking(static, AUTO) == Chunking(200, 100)
    with pytest.raises(InvalidRequest):
        parse_chunking({"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 150}},
                       AUTO)
    with pytest.raises(InvalidRequest):
        parse_chunking({"type": "fancy"}, AUTO)
