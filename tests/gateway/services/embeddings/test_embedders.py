"""The local ONNX model and an OpenAI-compatible backend (the simulator) as the gateway's embedder."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from gateway.kernel.config.sections.rag import EmbeddingSettings
from gateway.services.embeddings.base import EmbeddingError
from gateway.services.embeddings.batcher import BatchingEmbedder
from gateway.services.embeddings.factory import make_embedder
from simulator.embeddings import embed as sim_embed
from tests.support.processes import ServerProcess


async def test_local_model_is_normalised_and_semantic() -> None:
    embedder = make_embedder(EmbeddingSettings())
    try:
        v = await embedder.embed(["A cat sits on the mat.", "A kitten rests on a rug.", "Quarterly tax filing"])
    finally:
        await embedder.aclose()
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3


async def test_concurrent_calls_are_batched_and_match_single_calls() -> None:
    runs: list[int] = []

    def load():  # type: ignore[no-untyped-def]
        from gateway.services.embeddings.minilm import MiniLmModel

        model = MiniLmModel()

        def run(texts):  # type: ignore[no-untyped-def]
            runs.append(len(texts))
            return model.embed(texts)

        return run

    embedder = BatchingEmbedder("t", 384, load, max_batch=32)
    texts = [f"sentence number {i}" for i in range(20)]
    try:
        together = await asyncio.gather(*(embedder.embed([t]) for t in texts))
        alone = [await embedder.embed([t]) for t in texts[:3]]
    finally:
        await embedder.aclose()
    assert len(runs) < 20 + 3  # concurrent requests shared model runs
    for a, b in zip(together[:3], alone, strict=True):
        assert np.allclose(a, b, atol=1e-4)


async def test_model_failures_reach_every_waiter() -> None:
    def load():  # type: ignore[no-untyped-def]
        raise RuntimeError("no model here")

    embedder = BatchingEmbedder("t", 384, load, max_batch=4)
    try:
        with pytest.raises(EmbeddingError):
            await embedder.embed(["x"])
    finally:
        await embedder.aclose()


async def test_openai_compatible_backend(sim: ServerProcess) -> None:
    settings = EmbeddingSettings(provider="openai", base_url=sim.url + "/v1", model="sim-embed", max_batch=2)
    embedder = make_embedder(settings)
    try:
        v = await embedder.embed(["a", "b", "c"])
    finally:
        await embedder.aclose()
    assert v.shape == (3, 384)
    assert np.allclose(v[2], np.array(sim_embed("c"), dtype=np.float32), atol=1e-5)


async def test_unreachable_backend_is_an_embedding_error() -> None:
    settings = EmbeddingSettings(provider="openai", base_url="http://127.0.0.1:9/v1", timeout_s=1)
    embedder = make_embedder(settings)
    try:
        with pytest.raises(EmbeddingError):
            await embedder.embed(["a"])
    finally:
        await embedder.aclose()
