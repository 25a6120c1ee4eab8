"""Sandboxed tool execution for llmops-gateway: specs, drivers, egress policy, redaction, node agent."""

from __future__ import annotations

from executors.drivers import DRIVERS, SandboxDriver, load_driver
from executors.errors import (
    AuthError,
    DriverUnavailable,
    EgressDenied,
    ExecutorError,
    JobRejected,
    LimitExceeded,
    NodeError,
    SandboxError,
    Timeout,
)
from executors.spec import Grants, Job, Limits, Result, job_from_dict, job_to_dict, result_from_dict
from executors.tools import BUILTIN_TOOLS, ToolDef, tool_from_config

__all__ = [
    "BUILTIN_TOOLS",
    "DRIVERS",
    "AuthError",
    "DriverUnavailable",
    "EgressDenied",
    "ExecutorError",
    "Grants",
    "Job",
    "JobRejected",
    "LimitExceeded",
    "Limits",
    "NodeError",
    "Result",
    "SandboxDriver",
    "SandboxError",
    "Timeout",
    "ToolDef",
    "job_from_dict",
    "job_to_dict",
    "load_driver",
    "result_from_dict",
    "tool_from_config",
]
