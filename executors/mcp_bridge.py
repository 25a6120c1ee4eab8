"""Inside a sandbox: start one stdio MCP server, make one request over MCP, print one JSON answer.

Stdlib only (the node binds this file read-only at ``/job/main`` and runs it with the system
``python3 -I -S``; it never imports the project). The node runs an ``mcp_stdio`` job as::

    python3 -I -S /job/main -- SERVER_ARGV...     stdin: {"op": ..., ...}

``op`` is ``list_tools`` (every page of ``tools/list``) or ``call_tool`` (``name``, ``arguments``).
Optional: ``timeout_s`` (the whole exchange), ``max_bytes`` (each message read, and the answer),
``token_env`` (the variable the server reads its credential from: the bridge copies it there from
``TOKEN_FILE``, the read-only secret file the node mounts, so it is never in an argv or the job's env).

The exchange follows MCP's stdio transport: newline-delimited JSON-RPC; ``initialize``, its result,
``notifications/initialized``, the one request, its result; then stdin closed, SIGTERM, SIGKILL.
Notifications are skipped, requests from the server are answered (``ping``) or refused, and lines
that are not JSON (a server logging to stdout) are skipped up to ``max_bytes`` in all.

The answer, one line on stdout: ``{"ok": true, "result": {...}, "protocol": ..., "server": {...}}``
(exit 0) or ``{"ok": false, "error": KIND, "message": ..., "code": ...}`` (exit 1), where KIND is
``rpc`` (the server answered with a JSON-RPC error; ``code`` is its code), ``exited``, ``garbage``,
``too_large``, ``timeout``, ``spawn`` or ``input``.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from typing import Any

PROTOCOL = "2025-11-25"  # what we ask for; the server answers with the revision it speaks
TOKEN_FILE = "/run/secrets/mcp_token"
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
MAX_PAGES = 50
STDERR_TAIL = 2000
CLIENT_INFO = {"name": "llmops-mcp-bridge", "version": "1"}
METHOD_NOT_FOUND = -32601


class BridgeError(Exception):
    def __init__(self, kind: str, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.code = kind, message, code


class StderrTail(threading.Thread):
    """Drains the server's stderr (so it never blocks on a full pipe), keeping the last bytes."""

    def __init__(self, stream: Any) -> None:
        super().__init__(daemon=True)
        self._stream = stream
        self.tail = b""

    def run(self) -> None:
        while chunk := self._stream.read1(65536):
            self.tail = (self.tail + chunk)[-STDERR_TAIL:]

    def text(self) -> str:
        return self.tail.decode("utf-8", "replace").strip()


class Server:
    """The child process and the JSON-RPC messages on its stdout."""

    def __init__(self, argv: list[str], env: dict[str, str], deadline: float, max_bytes: int) -> None:
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, env=env)
        except OSError as exc:
            raise BridgeError("spawn", f"cannot start {argv[0]!r}: {exc.strerror or exc}") from None
        self.stderr = StderrTail(self.proc.stderr)
        self.stderr.start()
        self.deadline, self.max_bytes = deadline, max_bytes
        self._buffer = b""
        self._skipped = 0
        self._sample = ""
        self._next_id = 0

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ConnectionResetError):
            raise self.died("while we wrote to it") from None

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send one request; return its result, answering what the server asks in between."""
        self._next_id += 1
        ident = self._next_id
        self.send({"id": ident, "method": method, "params": params})
        while True:
            message = self.receive(method)
            if "method" in message:
                self.answer(message)
            elif message.get("id") == ident:
                return self.outcome(method, message)

    def outcome(self, method: str, message: dict[str, Any]) -> dict[str, Any]:
        error, result = message.get("error"), message.get("result")
        if isinstance(error, dict):
            code = error.get("code")
            raise BridgeError("rpc", f"{method}: {error.get('message', 'error')}",
                              code if isinstance(code, int) else None)
        if not isinstance(result, dict):
            raise BridgeError("garbage", f"the answer to {method} has no result object")
        return result

    def answer(self, message: dict[str, Any]) -> None:
        """Reply to a request from the server (a notification needs nothing)."""
        if "id" not in message:
            return
        if message["method"] == "ping":
            self.send({"id": message["id"], "result": {}})
        else:
            self.send({"id": message["id"], "error": {"code": METHOD_NOT_FOUND, "message": "not supported"}})

    def receive(self, waiting_for: str) -> dict[str, Any]:
        """The next JSON-RPC message (an object); non-JSON lines are skipped within the byte budget."""
        while True:
            line = self._line(waiting_for)
            try:
                message = json.loads(line)
            except ValueError:
                self._skip(line)
                continue
            if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
                raise BridgeError("garbage", f"not a JSON-RPC message while waiting for {waiting_for}: "
                                  f"{_clip(line)}")
            return message

    def _skip(self, line: bytes) -> None:
        self._skipped += len(line)
        self._sample = self._sample or _clip(line)
        if self._skipped > self.max_bytes:
            raise BridgeError("garbage", f"the server wrote over {self.max_bytes} bytes that are not JSON-RPC, "
                              f"starting with: {self._sample}")

    def _line(self, waiting_for: str) -> bytes:
        """The next non-blank line of stdout."""
        while True:
            while b"\n" not in self._buffer:
                if len(self._buffer) > self.max_bytes:
                    raise BridgeError("too_large", f"a message from the server is over {self.max_bytes} bytes")
                self._buffer += self._read(waiting_for)
            line, _, self._buffer = self._buffer.partition(b"\n")
            if line.strip():
                return line.strip()

    def _read(self, waiting_for: str) -> bytes:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        remaining = self.deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise BridgeError("timeout", f"no answer to {waiting_for} in time" + self._stderr_note())
        chunk = os.read(fd, 65536)
        if not chunk:
            raise self.died(f"before answering {waiting_for}")
        return chunk

    def died(self, when: str) -> BridgeError:
        try:
            code = self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            code = None
        status = "closed its stdout" if code is None else f"exited with code {code}"
        note = f"; it wrote non-JSON output: {self._sample}" if self._sample else ""
        return BridgeError("exited", f"the server {status} {when}{note}{self._stderr_note()}")

    def _stderr_note(self) -> str:
        if self.proc.poll() is not None:
            self.stderr.join(timeout=0.5)  # an exited server's last words are still in the pipe
        tail = self.stderr.text()
        return f"; its stderr ends with: {tail[-500:]}" if tail else ""

    def close(self) -> None:
        """MCP's stdio shutdown: close stdin, then SIGTERM, then SIGKILL."""
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        for stop in (None, self.proc.terminate, self.proc.kill):
            if stop is not None:
                stop()
            try:
                self.proc.wait(timeout=1.0)
                return
            except subprocess.TimeoutExpired:
                continue


def _clip(line: bytes) -> str:
    return repr(line[:200].decode("utf-8", "replace"))


def read_op(text: str) -> dict[str, Any]:
    try:
        op = json.loads(text)
    except ValueError:
        raise BridgeError("input", "stdin is not JSON") from None
    if not isinstance(op, dict) or op.get("op") not in ("list_tools", "call_tool"):
        raise BridgeError("input", "op must be list_tools or call_tool")
    if op["op"] == "call_tool" and not (isinstance(op.get("name"), str) and isinstance(op.get("arguments", {}), dict)):
        raise BridgeError("input", "call_tool needs a name and an arguments object")
    for key, default in (("timeout_s", DEFAULT_TIMEOUT_S), ("max_bytes", DEFAULT_MAX_BYTES)):
        value = op.setdefault(key, default)
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise BridgeError("input", f"{key} must be a positive number")
    return op


def server_env(op: dict[str, Any]) -> dict[str, str]:
    """The bridge's own environment, plus the credential under ``token_env`` when the node mounted one."""
    env = dict(os.environ)
    name = op.get("token_env")
    if isinstance(name, str) and name and os.path.exists(TOKEN_FILE):
        with open(TOKEN_FILE, encoding="utf-8") as secret:
            env[name] = secret.read()
    return env


def exchange(server: Server, op: dict[str, Any]) -> dict[str, Any]:
    """initialize → initialized → the one request; the answer's fields."""
    hello = server.request("initialize", {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": CLIENT_INFO})
    server.send({"method": "notifications/initialized"})
    if op["op"] == "call_tool":
        result = server.request("tools/call", {"name": op["name"], "arguments": op.get("arguments", {})})
    else:
        result = {"tools": list_all(server)}
    return {"ok": True, "result": result, "protocol": hello.get("protocolVersion"),
            "server": hello.get("serverInfo")}


def list_all(server: Server) -> list[Any]:
    tools: list[Any] = []
    params: dict[str, Any] = {}
    for _ in range(MAX_PAGES):
        page = server.request("tools/list", params)
        if not isinstance(page.get("tools"), list):
            raise BridgeError("garbage", "tools/list answered without a tools list")
        tools += page["tools"]
        cursor = page.get("nextCursor")
        if not isinstance(cursor, str) or not cursor:
            return tools
        params = {"cursor": cursor}
    raise BridgeError("too_large", f"tools/list has more than {MAX_PAGES} pages")


def run(argv: list[str], stdin: str) -> tuple[dict[str, Any], int]:
    """The answer and the exit code for one job."""
    try:
        op = read_op(stdin)
        if not argv:
            raise BridgeError("input", "no server command")
        deadline = time.monotonic() + float(op["timeout_s"])
        max_bytes = int(op["max_bytes"])
        server = Server(argv, server_env(op), deadline, max_bytes)
        try:
            answer = exchange(server, op)
        finally:
            server.close()
        if len(json.dumps(answer, ensure_ascii=False).encode()) > max_bytes:
            raise BridgeError("too_large", f"the server's answer is over {max_bytes} bytes")
        return answer, 0
    except BridgeError as exc:
        return {"ok": False, "error": exc.kind, "message": exc.message, "code": exc.code}, 1


def main() -> int:
    args = sys.argv[1:]
    answer, code = run(args[1:] if args[:1] == ["--"] else args, sys.stdin.read())
    sys.stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
