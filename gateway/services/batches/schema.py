"""The Batch API's tables: the batches, each line's one result (keyed by ``custom_id``), finished chunks."""

from __future__ import annotations

COMPONENT = "batches"

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE llmops_batches (
        id text PRIMARY KEY,
        seq bigserial NOT NULL,
        tenant text NOT NULL,
        caller jsonb,
        endpoint text NOT NULL,
        input_file_id text NOT NULL,
        completion_window text NOT NULL,
        status text NOT NULL,
        created_at bigint NOT NULL,
        expires_at bigint NOT NULL,
        in_progress_at bigint, finalizing_at bigint, completed_at bigint, failed_at bigint,
        expired_at bigint, cancelling_at bigint, cancelled_at bigint,
        output_file_id text, error_file_id text,
        errors jsonb,
        metadata jsonb,
        total integer NOT NULL DEFAULT 0,
        chunks integer NOT NULL DEFAULT 0,
        completed integer NOT NULL DEFAULT 0,
        failed integer NOT NULL DEFAULT 0
    );
    CREATE INDEX llmops_batches_by_tenant ON llmops_batches (tenant, seq DESC);
    CREATE TABLE llmops_batch_results (
        batch_id text NOT NULL REFERENCES llmops_batches (id) ON DELETE CASCADE,
        custom_id text NOT NULL,
        line integer NOT NULL,
        ok boolean NOT NULL,
        result text NOT NULL,
        PRIMARY KEY (batch_id, custom_id)
    );
    CREATE TABLE llmops_batch_chunks (
        batch_id text NOT NULL REFERENCES llmops_batches (id) ON DELETE CASCADE,
        chunk integer NOT NULL,
        PRIMARY KEY (batch_id, chunk)
    );
    """,
)
