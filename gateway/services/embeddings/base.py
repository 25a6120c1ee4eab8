"""The embedder contract: texts in, L2-normalised float32 rows out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from gateway.kernel.errors import ServiceOverloaded

Vectors = npt.NDArray[np.float32]


class EmbeddingError(ServiceOverloaded):
    """The embedder could not answer (model missing, remote down)."""

    default_code = "embeddings_unavailable"


class Embedder(Protocol):
    name: str
    dimensions: int

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """One normalised row per text; raises ``EmbeddingError``."""
        ...

    async def aclose(self) -> None: ...


def normalise(rows: Vectors) -> Vectors:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: Vectors = (rows / norms).astype(np.float32, copy=False)
    return out

