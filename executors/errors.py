"""The one exception tree of the executors package.

::

    ExecutorError
    ├── SandboxError              a sandbox could not run the job as asked
    │   ├── LimitExceeded         the job hit a limit (cpu, memory, pids, output)
    │   ├── Timeout               the job hit its wall-clock limit (reason "wall")
    │   └── DriverUnavailable     the driver's prerequisite is missing on this machine
    ├── JobRejected               the job is invalid or not allowed (bad spec, no driver, egress refused)
    │   ├── EgressDenied          http_request to a host the grants do not allow (any hop)
    │   └── TooManyRedirects      http_request met more redirects than its hop limit
    ├── AuthError                 a signed request failed verification
    └── NodeError                 talking to a node failed (transport or a non-2xx answer)

Drivers raise ``SandboxError`` subclasses only for failures of the sandbox itself; a job that
exits non-zero or hits a limit is a normal ``Result`` (``Result.raise_for_limit()`` converts).
"""

from __future__ import annotations


class ExecutorError(Exception):
    """Base of every error raised by ``executors``."""


class SandboxError(ExecutorError):
    """The sandbox failed (not the job inside it)."""


class LimitExceeded(SandboxError):
    """A resource limit stopped the job; ``reason`` names it (cpu, memory, pids, output)."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or f"limit exceeded: {reason}")
        self.reason = reason


class Timeout(SandboxError):
    """The job ran past its wall-clock limit."""

    reason = "wall"


class DriverUnavailable(SandboxError):
    """The driver cannot run on this machine; the message says why."""


class JobRejected(ExecutorError):
    """The job is malformed or not allowed."""


class EgressDenied(JobRejected):
    """An egress target is not granted or resolves to a refused address."""


class TooManyRedirects(JobRejected):
    """``http_request`` was redirected more times than it follows."""


class AuthError(ExecutorError):
    """A request signature is missing, stale, replayed or wrong."""


class NodeError(ExecutorError):
    """A node answered with an error or could not be reached."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status
