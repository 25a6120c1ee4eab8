"""Migrations of the ``responses`` component (applied once each, in order; ``stores/migrations.py``).

Every table is keyed by tenant first: a row of another tenant cannot be named, only missed. A
response's input items are rows (paged by ``seq``); its output stays inside the Response object.
Items, jobs and stream events go with their response (``ON DELETE CASCADE``), conversation items
with their conversation. A job keeps what its run needs (``request``: the request body and the
caller, never a credential), so any replica can run it.
"""

from __future__ import annotations

COMPONENT = "responses"

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE llmops_responses (
        tenant text NOT NULL,
        id text NOT NULL,
        previous_response_id text,
        conversation_id text,
        created_at bigint NOT NULL,
        response jsonb NOT NULL,
        PRIMARY KEY (tenant, id)
    );
    CREATE INDEX llmops_responses_created ON llmops_responses (created_at);
    CREATE TABLE llmops_response_items (
        tenant text NOT NULL,
        response_id text NOT NULL,
        seq integer NOT NULL,
        item_id text NOT NULL,
        item jsonb NOT NULL,
        PRIMARY KEY (tenant, response_id, seq),
        FOREIGN KEY (tenant, response_id) REFERENCES llmops_responses (tenant, id) ON DELETE CASCADE
    );
    CREATE INDEX llmops_response_items_id ON llmops_response_items (tenant, response_id, item_id);
    CREATE TABLE llmops_conversations (
        tenant text NOT NULL,
        id text NOT NULL,
        metadata jsonb NOT NULL,
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL,
        PRIMARY KEY (tenant, id)
    );
    CREATE INDEX llmops_conversations_updated ON llmops_conversations (updated_at);
    CREATE TABLE llmops_conversation_items (
        tenant text NOT NULL,
        conversation_id text NOT NULL,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        item_id text NOT NULL,
        item jsonb NOT NULL,
        PRIMARY KEY (tenant, conversation_id, seq),
        UNIQUE (tenant, conversation_id, item_id),
        FOREIGN KEY (tenant, conversation_id) REFERENCES llmops_conversations (tenant, id) ON DELETE CASCADE
    );
    CREATE TABLE llmops_response_jobs (
        tenant text NOT NULL,
        response_id text NOT NULL,
        state text NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        owner text,
        lease_until timestamptz,
        enqueued_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        last_error text,
        request jsonb,
        PRIMARY KEY (tenant, response_id),
        FOREIGN KEY (tenant, response_id) REFERENCES llmops_responses (tenant, id) ON DELETE CASCADE
    );
    CREATE INDEX llmops_response_jobs_queued ON llmops_response_jobs (enqueued_at) WHERE state = 'queued';
    CREATE INDEX llmops_response_jobs_leases ON llmops_response_jobs (lease_until) WHERE state = 'running';
    CREATE TABLE llmops_response_events (
        tenant text NOT NULL,
        response_id text NOT NULL,
        seq integer NOT NULL,
        event jsonb NOT NULL,
        PRIMARY KEY (tenant, response_id, seq),
        FOREIGN KEY (tenant, response_id) REFERENCES llmops_responses (tenant, id) ON DELETE CASCADE
    );
    """,
    # item_reference inputs name an item by id alone: find it in any of the three places it is kept
    """
    CREATE INDEX llmops_response_items_item ON llmops_response_items (tenant, item_id);
    CREATE INDEX llmops_conversation_items_item ON llmops_conversation_items (tenant, item_id);
    CREATE INDEX llmops_responses_output ON llmops_responses USING gin ((response -> 'output') jsonb_path_ops);
    """,
)
