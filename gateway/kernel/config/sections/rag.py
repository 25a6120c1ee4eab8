"""Settings for issue 4: embeddings, vector stores, augmentation."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from gateway.kernel.config.base import Section


class EmbeddingSettings(Section):
    """The gateway's own embedder (retrieval, semantic cache); not the /v1/embeddings route."""

    provider: Literal["local", "openai"] = Field("local", description="local = int8 ONNX all-MiniLM-L6-v2.")
    base_url: str | None = Field(None, pattern=r"^https?://", description="openai: up to /v1.")
    model: str = "all-MiniLM-L6-v2"
    api_key: SecretStr | None = None
    dimensions: int = Field(384, ge=1, le=16000)
    max_batch: int = Field(32, ge=1, description="Texts per model call (micro-batching).")
    timeout_s: float = Field(30.0, gt=0)


class ChunkingSettings(Section):
    max_chunk_size_tokens: int = Field(800, ge=100, le=4096)
    chunk_overlap_tokens: int = Field(400, ge=0)


class RagSettings(Section):
    embeddings: EmbeddingSettings = EmbeddingSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    top_k: int = Field(5, ge=1, le=50, description="Chunks injected per request.")
    score_threshold: float = Field(0.0, ge=0, le=1)
    max_context_chars: int = Field(12_000, ge=500, description="Budget of the injected system message.")
    on_unavailable: Literal["proceed", "fail"] = Field(
        "proceed", description="PostgreSQL down: answer without augmentation (header says so), or fail 503."
    )
    tenant_stores: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="Vector stores searched by default for a tenant."
    )
    key_stores: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="Vector stores searched by default for an API key id."
    )
    ef_search: int = Field(100, ge=10, le=1000, description="HNSW search breadth (recall vs latency).")
    exact_below: int = Field(5000, ge=0, description="Stores with fewer chunks are searched exactly.")
    max_file_bytes: int = Field(64 * 1024 * 1024, ge=1024)
