"""Scheduler failures, in the gateway's one error tree."""

from __future__ import annotations

from gateway.kernel.errors import (
    AuthenticationFailed,
    GatewayError,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)


class NoEligibleNode(UpstreamUnavailable):
    """No live node satisfies the job's hard constraints."""

    default_code = "no_tool_node"


class NodeFailed(UpstreamError):
    """A node failed while running a job that could not be retried elsewhere."""

    default_code = "tool_node_failed"


class QueueFull(RateLimited):
    """The tenant's (or the global) tool-job queue is full: back-pressure."""

    default_code = "tool_queue_full"


class QueueTimeout(UpstreamTimeout):
    """No node slot freed up before the job's deadline."""

    default_code = "tool_queue_timeout"


class JobTimeout(UpstreamTimeout):
    """The node did not answer within the job's deadline."""

    default_code = "tool_job_timeout"


class JobRefused(UpstreamError):
    """A node refused the job itself (bad spec, no driver for its runtime, bad signature)."""

    default_code = "tool_job_rejected"


class EnrollmentRefused(AuthenticationFailed):
    """A join token that is unknown, used or expired, or a proof of key possession that fails."""

    default_code = "node_enrollment_refused"


class NodeIdTaken(GatewayError):
    """The node id is enrolled already: enrollment never takes over an id."""

    status = 409
    error_type = "invalid_request_error"
    default_code = "node_id_taken"
