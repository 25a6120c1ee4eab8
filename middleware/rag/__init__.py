"""Retrieval augmentation stage ("rag"): top-k chunks from pgvector injected as a data-only system message."""
