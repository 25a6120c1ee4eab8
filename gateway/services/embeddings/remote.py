"""Any OpenAI-compatible ``/v1/embeddings`` server as the gateway's embedder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp
import numpy as np
import orjson

from gateway.kernel.config.sections.rag import EmbeddingSettings
from gateway.services.embeddings.base import EmbeddingError, Vectors, normalise


class RemoteEmbedder:
    def __init__(self, settings: EmbeddingSettings) -> None:
        if not settings.base_url:
            raise ValueError("rag.embeddings.base_url is required for provider 'openai'")
        self.name = settings.model
        self.dimensions = settings.dimensions
        self._url = settings.base_url.rstrip("/") + "/embeddings"
        self._settings = settings
        self._headers = {"content-type": "application/json"}
        if settings.api_key is not None:
            self._headers["authorization"] = f"Bearer {settings.api_key.get_secret_value()}"
        self._session: aiohttp.ClientSession | None = None

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        rows: list[Vectors] = []
        step = self._settings.max_batch
        for i in range(0, len(texts), step):
            rows.append(await self._call(list(texts[i : i + step])))
        return np.concatenate(rows)

    async def _call(self, texts: list[str]) -> Vectors:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._settings.timeout_s))
        payload = orjson.dumps({"model": self._settings.model, "input": texts})
        try:
            async with self._session.post(self._url, data=payload, headers=self._headers) as resp:
                body = await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise EmbeddingError(f"The embeddings backend is unreachable ({type(exc).__name__}).") from None
        if status != 200:
            raise EmbeddingError(f"The embeddings backend answered {status}.")
        return self._parse(body, len(texts))

    def _parse(self, body: bytes, expected: int) -> Vectors:
        try:
            doc: Any = orjson.loads(body)
            data = sorted(doc["data"], key=lambda d: d["index"])
            rows = np.array([d["embedding"] for d in data], dtype=np.float32)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise EmbeddingError("The embeddings backend sent an unreadable answer.") from None
        if rows.shape != (expected, self.dimensions):
            raise EmbeddingError(f"The embeddings backend sent {rows.shape}, expected ({expected}, {self.dimensions}).")
        return normalise(rows)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
