"""File → text → chunks → embeddings → rows, for one store file."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import numpy as np
from psycopg import AsyncConnection

from gateway.services.embeddings.base import Embedder
from gateway.services.vectorstores.chunking import Chunker, Chunking
from gateway.services.vectorstores.extract import extract_text
from gateway.services.vectorstores.objects import StoreRow
from gateway.services.vectorstores.search import copy_chunks

EMBED_BATCH = 64
Progress = Callable[[int, int], None]  # (chunks done, chunks total)


class _WordTokenizer:
    """Fallback when the model's tokenizer.json is not installed: words and punctuation."""

    class _Encoding:
        def __init__(self, offsets: list[tuple[int, int]]) -> None:
            self.offsets = offsets

    def encode(self, text: str, add_special_tokens: bool = False) -> Any:
        return self._Encoding([m.span() for m in re.finditer(r"\w+|[^\w\s]", text)])


def make_chunker() -> Chunker:
    try:
        from gateway.services.embeddings.minilm import load_tokenizer

        return Chunker(load_tokenizer(None))
    except Exception:  # any failure to load the tokenizer means "use the fallback"
        return Chunker(_WordTokenizer())


async def split_file(chunker: Chunker, filename: str, data: bytes, chunking: Chunking) -> list[str]:
    text = await asyncio.to_thread(extract_text, filename, data)
    return await asyncio.to_thread(chunker.split, text, chunking)


async def embed_and_store(conn: AsyncConnection, embedder: Embedder, store: StoreRow, file_id: str,
                          chunks: list[str], progress: Progress | None = None) -> None:
    await conn.execute("DELETE FROM llmops_chunks WHERE store_id = %s AND file_id = %s", (store.id, file_id))
    for start in range(0, len(chunks), EMBED_BATCH):
        batch = chunks[start : start + EMBED_BATCH]
        vectors = await embedder.embed(batch)
        await copy_chunks(conn, store, file_id, batch, vectors.astype(np.float32), start)
        if progress is not None:
            progress(min(start + len(batch), len(chunks)), len(chunks))
