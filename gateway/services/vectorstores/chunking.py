"""Token-window chunking (``auto`` = 800 tokens with 400 overlap, or ``static``), counted with the
embedding model's own WordPiece tokenizer and cut on the original character offsets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.kernel.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class Chunking:
    max_tokens: int = 800
    overlap: int = 400

    def describe(self) -> dict[str, Any]:
        return {"type": "static", "static": {"max_chunk_size_tokens": self.max_tokens,
                                             "chunk_overlap_tokens": self.overlap}}


def parse_chunking(raw: Any, default: Chunking) -> Chunking:
    """OpenAI's ``chunking_strategy`` request parameter (absent or ``auto`` → ``default``)."""
    if raw is None or (isinstance(raw, dict) and raw.get("type") == "auto"):
        return default
    static = raw.get("static") if isinstance(raw, dict) and raw.get("type") == "static" else None
    if not isinstance(static, dict):
        raise InvalidRequest("chunking_strategy must be {'type': 'auto'} or {'type': 'static', 'static': {...}}.",
                             param="chunking_strategy")
    size, overlap = static.get("max_chunk_size_tokens"), static.get("chunk_overlap_tokens")
    if not isinstance(size, int) or not 100 <= size <= 4096:
        raise InvalidRequest("max_chunk_size_tokens must be an integer in [100, 4096].",
                             param="chunking_strategy.static.max_chunk_size_tokens")
    if not isinstance(overlap, int) or not 0 <= overlap <= size // 2:
        raise InvalidRequest("chunk_overlap_tokens must be an integer from 0 to half of max_chunk_size_tokens.",
                             param="chunking_strategy.static.chunk_overlap_tokens")
    return Chunking(size, overlap)


class Chunker:
    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer  # a ``tokenizers.Tokenizer`` without truncation/padding

    def split(self, text: str, chunking: Chunking) -> list[str]:
        if not text.strip():
            return []
        offsets: list[tuple[int, int]] = self._tokenizer.encode(text, add_special_tokens=False).offsets
        if len(offsets) <= chunking.max_tokens:
            return [text.strip()]
        step = max(1, chunking.max_tokens - chunking.overlap)
        chunks: list[str] = []
        for start in range(0, len(offsets), step):
            end = min(start + chunking.max_tokens, len(offsets))
            piece = text[offsets[start][0] : offsets[end - 1][1]].strip()
            if piece:
                chunks.append(piece)
            if end == len(offsets):
                break
        return chunks
