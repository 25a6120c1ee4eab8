"""The semantic guard: near-identical embeddings must still miss when a value differs."""

from __future__ import annotations

import asyncio

import pytest

from gateway.kernel.config.sections.rag import EmbeddingSettings
from gateway.services.embeddings.factory import make_embedder
from middleware.cache.guard import signature

THRESHOLD = 0.92  # the default cache.semantic_threshold

# (a, b): pairs whose answers differ although their wording is close
MUST_MISS = [
    ("Convert 10 USD to EUR", "Convert 10 EUR to USD"),
    ("Convert 10 USD to EUR", "Convert 12 USD to EUR"),
    ("Is Python typed?", "Is Python not typed?"),
    ("What is 12 times 7?", "What is 12 times 8?"),
    ('Translate "good morning" to French', 'Translate "good night" to French'),
    ("Summarise https://example.com/a", "Summarise https://example.com/b"),
    ("Why does `foo()` crash?", "Why does `bar()` crash?"),
    ("Flights from Paris to London", "Flights from London to Paris"),
    ("Which is larger, 3 or 5?", "Which is smaller, 3 or 5?"),
    ("List cities in Spain", "List cities in Italy"),
]
# pairs that are paraphrases: same values, different wording
MAY_HIT = [
    ("Convert 10 USD to EUR", "convert 10 USD to EUR please"),
    ("How do I reverse a list in Python?", "How can I reverse a Python list?"),
    ("Convert ten USD into EUR", "Convert 10 USD to EUR"),
]


@pytest.mark.parametrize(("a", "b"), MUST_MISS)
def test_value_changes_change_the_signature(a: str, b: str) -> None:
    assert signature(a) != signature(b)


@pytest.mark.parametrize(("a", "b"), MAY_HIT)
def test_paraphrases_keep_the_signature(a: str, b: str) -> None:
    assert signature(a) == signature(b)


def test_the_guard_is_needed_the_embedding_alone_would_hit() -> None:
    embedder = make_embedder(EmbeddingSettings())

    async def similarity(a: str, b: str) -> float:
        v = await embedder.embed([a, b])
        return float(v[0] @ v[1])

    async def run() -> tuple[list[float], list[float]]:
        try:
            return ([await similarity(a, b) for a, b in (MUST_MISS[0], MUST_MISS[2])],
                    [await similarity(a, b) for a, b in MAY_HIT[:2]])
        finally:
            await embedder.aclose()

    misses, hits = asyncio.run(run())
    assert all(s >= THRESHOLD for s in misses), misses  # all-MiniLM alone would serve the wrong answer
    assert all(s >= THRESHOLD for s in hits), hits
