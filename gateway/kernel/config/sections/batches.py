"""The durable job engine (procrastinate on the gateway's PostgreSQL) and the Batch API that runs on it."""

from __future__ import annotations

from pydantic import Field

from gateway.kernel.config.base import Section


class JobsSettings(Section):
    """Every replica runs one worker of the job engine (``gateway/services/jobs``); any replica picks up work."""

    concurrency: int = Field(4, ge=0, description="Jobs one replica runs at a time; 0: this replica runs none "
                             "(others do).")
    heartbeat_s: float = Field(2.0, gt=0, description="How often a worker records that it is alive.")
    stalled_after_s: float = Field(10.0, gt=0, description="A worker silent this long is dead (a killed "
                                   "process): its running jobs are queued again.")
    rescue_interval_s: float = Field(5.0, gt=0, description="How often jobs of dead workers are looked for.")
    poll_interval_s: float = Field(1.0, gt=0, description="Idle workers look for jobs this often, besides "
                                   "PostgreSQL's notifications.")
    shutdown_grace_s: float = Field(5.0, ge=0, description="On shutdown, running jobs get this long to "
                                    "finish; the rest are queued again.")


class BatchesSettings(Section):
    """``/v1/batches``: lines run through the chain at batch priority."""

    chunk_lines: int = Field(200, ge=1, le=10_000, description="Lines per job: a batch is split into jobs "
                             "of this many lines.")
    concurrency: int = Field(8, ge=1, description="Batch lines one replica sends through the chain at a time "
                             "(all batches together): interactive traffic keeps the rest of the capacity.")
    busy_concurrency: int = Field(1, ge=1, description="Batch lines one replica runs at a time while it serves "
                                  "interactive requests: those go first, the batch keeps moving.")
    max_lines: int = Field(50_000, ge=1, description="Most lines in one batch input file.")
    completion_window_s: float = Field(86_400.0, gt=0, description="How long the '24h' completion window "
                                       "lasts; lines not run by then end in the error file, the batch expired.")
