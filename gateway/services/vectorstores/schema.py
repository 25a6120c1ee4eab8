"""Migrations of the ``vectorstores`` component (applied once each, in order).

Embeddings live in an untyped ``vector`` column; each store gets its own *partial* HNSW index
over ``embedding::vector(dims)`` once it is large enough (see ``search.py``), so an ANN scan only
ever walks one store's graph and a tenant filter can never starve it of rows.
"""

from __future__ import annotations

COMPONENT = "vectorstores"

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE EXTENSION IF NOT EXISTS vector;
    CREATE TABLE llmops_files (
        id text PRIMARY KEY,
        tenant text NOT NULL,
        filename text NOT NULL,
        purpose text NOT NULL,
        bytes bigint NOT NULL,
        created_at bigint NOT NULL,
        content bytea NOT NULL
    );
    CREATE INDEX llmops_files_tenant ON llmops_files (tenant, created_at);
    CREATE TABLE llmops_vector_stores (
        id text PRIMARY KEY,
        tenant text NOT NULL,
        name text NOT NULL DEFAULT '',
        metadata jsonb NOT NULL DEFAULT '{}',
        dimensions integer NOT NULL,
        created_at bigint NOT NULL,
        last_active_at bigint,
        version bigint NOT NULL DEFAULT 0,
        indexed boolean NOT NULL DEFAULT false
    );
    CREATE INDEX llmops_vector_stores_tenant ON llmops_vector_stores (tenant, created_at);
    CREATE TABLE llmops_vector_store_files (
        store_id text NOT NULL REFERENCES llmops_vector_stores (id) ON DELETE CASCADE,
        file_id text NOT NULL,
        tenant text NOT NULL,
        status text NOT NULL,
        usage_bytes bigint NOT NULL DEFAULT 0,
        created_at bigint NOT NULL,
        chunking jsonb NOT NULL,
        attributes jsonb,
        last_error jsonb,
        PRIMARY KEY (store_id, file_id)
    );
    CREATE TABLE llmops_chunks (
        store_id text NOT NULL REFERENCES llmops_vector_stores (id) ON DELETE CASCADE,
        file_id text NOT NULL,
        seq integer NOT NULL,
        tenant text NOT NULL,
        text text NOT NULL,
        embedding vector NOT NULL,
        PRIMARY KEY (store_id, file_id, seq)
    );
    CREATE TABLE llmops_semantic_cache (
        scope text NOT NULL,
        entry_key text NOT NULL,
        embedding vector NOT NULL,
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (scope, entry_key)
    );
    """,
)
