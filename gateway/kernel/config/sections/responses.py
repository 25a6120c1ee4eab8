"""Server-side state of the Responses and Conversations APIs: how long it is kept, and background work."""

from __future__ import annotations

from pydantic import Field

from gateway.kernel.config.base import Section


class BackgroundSettings(Section):
    """The durable queue behind ``background: true`` (``gateway/services/responses/queue.py``)."""

    lease_s: float = Field(30.0, ge=1, description="A runner holds a claimed response this long, renewing it "
                           "while it runs; a lease left to expire (a killed process) is recovered.")
    max_attempts: int = Field(2, ge=1, description="Runs of one response before it is marked failed "
                              "(2: a response whose runner died is re-queued once).")
    concurrency: int = Field(4, ge=0, description="Background responses one process runs at a time; 0: "
                             "this process runs none (other replicas do).")
    poll_interval_s: float = Field(0.5, gt=0, description="How often an idle runner looks for queued work, "
                                   "and a resumed stream for new events.")
    recover_interval_s: float = Field(10.0, gt=0, description="How often expired leases are recovered.")


class ResponsesSettings(Section):
    retention_days: float = Field(30.0, ge=0, description="Responses older than this, and conversations idle "
                                  "this long, are deleted by a periodic sweep; 0 keeps them until deleted.")
    sweep_interval_s: float = Field(3600.0, gt=0, description="How often the retention sweep runs.")
    max_chain_depth: int = Field(100, ge=1, le=10_000, description="Most previous_response_id ancestors read "
                                 "back as context; older turns are left out.")
    background: BackgroundSettings = BackgroundSettings()
