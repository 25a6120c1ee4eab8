"""Micro-batching: concurrent ``embed`` calls share model runs on one dedicated thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from gateway.services.embeddings.base import EmbeddingError, Vectors

SyncModel = Callable[[Sequence[str]], Vectors]
_Item = tuple[list[str], "asyncio.Future[Vectors]"]


class BatchingEmbedder:
    """Queues requests; one worker task drains the queue into batches of up to ``max_batch`` texts
    and runs the (lazily loaded) model on a single thread, off the event loop."""

    def __init__(self, name: str, dimensions: int, load: Callable[[], SyncModel], max_batch: int) -> None:
        self.name = name
        self.dimensions = dimensions
        self._load = load
        self._model: SyncModel | None = None
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Item] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="embedder")

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._drain(self._queue))
        future: asyncio.Future[Vectors] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((list(texts), future))
        return await future

    async def _drain(self, queue: asyncio.Queue[_Item]) -> None:
        while True:
            batch = [await queue.get()]
            size = len(batch[0][0])
            while size < self._max_batch and not queue.empty():
                item = queue.get_nowait()
                batch.append(item)
                size += len(item[0])
            await self._run(batch)

    async def _run(self, batch: list[_Item]) -> None:
        texts = [t for item, _ in batch for t in item]
        try:
            rows = await asyncio.get_running_loop().run_in_executor(self._thread, self._compute, texts)
        except Exception as exc:  # any model failure is handed to every waiter
            error = exc if isinstance(exc, EmbeddingError) else EmbeddingError(f"Embedding failed: {exc!r}.")
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        start = 0
        for item, future in batch:
            if not future.done():
                future.set_result(rows[start : start + len(item)])
            start += len(item)

    def _compute(self, texts: list[str]) -> Vectors:
        if self._model is None:
            self._model = self._load()
        out: list[Vectors] = []
        for i in range(0, len(texts), self._max_batch):
            out.append(self._model(texts[i : i + self._max_batch]))
        return np.concatenate(out)

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        self._thread.shutdown(wait=False, cancel_futures=True)
