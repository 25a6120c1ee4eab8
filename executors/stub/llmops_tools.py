"""Call the request's other tools from a ``code`` script (inside the sandbox; stdlib only).

    from llmops_tools import call, tools, ToolError
    out = call("python", {"code": "print(6 * 7)"})   # the tool's output as text
    out = tools.python(code="print(6 * 7)")           # the same
    try:
        call("shell", {"script": "ls"})
    except ToolError as exc:                          # denied by policy, failed, or not offered
        print(exc.status, exc)

Each call is sent to the node over a unix socket and goes back to the gateway, which decides it by
policy exactly as if the model had made it. Only what the script prints reaches the model.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

SOCKET = os.environ.get("LLMOPS_TOOLS_SOCKET", "/run/llmops-tools/tools.sock")
_CHUNK = 65536
MAX_CALL_BYTES = 1024 * 1024  # the node refuses a longer call


class ToolError(Exception):
    """A call that did not run cleanly: ``status`` is ``denied`` (by policy) or ``error``."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


def _exchange(line: bytes) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(SOCKET)
        conn.sendall(line)
        parts: list[bytes] = []
        while not parts or not parts[-1].endswith(b"\n"):
            chunk = conn.recv(_CHUNK)
            if not chunk:
                break
            parts.append(chunk)
    if not parts:
        raise ToolError("error", "the node closed the tools socket without an answer")
    answer: dict[str, Any] = json.loads(b"".join(parts))
    return answer


def call(name: str, arguments: dict[str, Any] | None = None) -> str:
    """Run tool ``name`` with ``arguments``; its output, or ``ToolError``."""
    line = json.dumps({"name": name, "arguments": arguments or {}}).encode() + b"\n"
    if len(line) > MAX_CALL_BYTES:
        raise ToolError("error", f"a tool call may be at most {MAX_CALL_BYTES} bytes of JSON")
    answer = _exchange(line)
    if not answer.get("ok"):
        raise ToolError(str(answer.get("status", "error")), str(answer.get("content", "")))
    return str(answer.get("content", ""))


class _Tools:
    """``tools.NAME(**arguments)`` is ``call("NAME", arguments)``."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        def run(**arguments: Any) -> str:
            return call(name, arguments)

        return run


tools = _Tools()
