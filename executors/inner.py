"""Code mode's wire: an inner tool call a ``code`` job's script makes, and the answer it gets.

Sandbox → node: the stub ``llmops_tools`` (``executors/stub/``) connects to the unix socket
``$LLMOPS_TOOLS_SOCKET`` and writes one JSON line ``{"name": "python", "arguments": {...}}``; it reads
one JSON line back, an ``InnerAnswer``: ``{"ok", "status", "content"}``.

Node ↔ control plane, signed request/response only (the node never calls the control plane):
``POST /v1/jobs`` for a code job answers with the job's result, or with ``{"pending": InnerCall}`` as
soon as the script makes a call; the control plane decides and runs that call as if the model had
made it, then ``POST /v1/jobs/{id}/answer`` with ``{"call_id", "answer": InnerAnswer}``, which again
answers with the next pending call or the result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from executors.errors import JobRejected

MAX_CALLS = 64  # inner calls per code job; later ones are answered with an error by the node
MAX_CALL_BYTES = 1024 * 1024  # one call's JSON line from the sandbox
MAX_ANSWER_BYTES = 4 * 1024 * 1024  # one answer's content (UTF-8) sent back into the sandbox
IDLE_SECONDS = 60.0  # a pending call unanswered this long: the control plane is gone, the job is killed

AnswerStatus = Literal["ok", "error", "denied"]


@dataclass(frozen=True, slots=True)
class InnerCall:
    """One call of a script, as the control plane sees it."""

    call_id: str
    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "name": self.name, "arguments": dict(self.arguments)}


@dataclass(frozen=True, slots=True)
class InnerAnswer:
    """What the script's ``call`` gets: the text a model would have read, and whether it ran cleanly."""

    status: AnswerStatus
    content: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "status": self.status, "content": self.content}


# The control plane's side: given a pending call, decide and run it and say what the script gets.
Answerer = Callable[[InnerCall], Awaitable[InnerAnswer]]


def inner_call_from_dict(data: Any) -> InnerCall:
    """Raises ``JobRejected`` unless ``data`` is ``{"call_id": str, "name": str, "arguments": {...}}``."""
    if not isinstance(data, Mapping):
        raise JobRejected("an inner call must be an object")
    call_id, name, arguments = data.get("call_id"), data.get("name"), data.get("arguments", {})
    if not isinstance(call_id, str) or not isinstance(name, str) or not isinstance(arguments, Mapping):
        raise JobRejected("an inner call needs a string call_id and name and an object of arguments")
    return InnerCall(call_id, name, dict(arguments))


def answer_from_dict(data: Any) -> InnerAnswer:
    """Raises ``JobRejected`` unless ``data`` is ``{"status": "ok"|"error"|"denied", "content": str}``."""
    if not isinstance(data, Mapping):
        raise JobRejected("an answer must be an object")
    status, content = data.get("status"), data.get("content")
    if status not in ("ok", "error", "denied") or not isinstance(content, str):
        raise JobRejected("an answer needs a status (ok, error, denied) and a string content")
    if len(content.encode()) > MAX_ANSWER_BYTES:
        raise JobRejected(f"an answer's content is over {MAX_ANSWER_BYTES} bytes")
    return InnerAnswer(status, content)
