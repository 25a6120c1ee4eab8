"""A stdio MCP server in the standard library only, for the bridge's tests (runs in a sandbox too).

``python3 mcp_tiny_server.py MODE``. ``ok`` is a working server whose replies make the bridge work for
them: a log line on stdout, a notification and a ping to the client before its initialize result, and
``tools/list`` in two pages. Its tools: ``echo``, ``env_sha256`` (hash of an environment variable),
``connect`` (a TCP connection), ``egress_get`` (HTTP over the node's egress socket), ``listdir``, ``read``,
``fail`` (a JSON-RPC error). The other modes misbehave: ``garbage``, ``notrpc``, ``crash``, ``silent``,
``huge``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

TOOLS = ["echo", "env_sha256", "connect", "egress_get", "listdir", "read", "fail"]


def send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", **message}) + "\n")
    sys.stdout.flush()


def receive() -> dict[str, Any]:
    line = sys.stdin.readline()
    if not line:
        sys.exit(0)
    message: dict[str, Any] = json.loads(line)
    return message


def text(value: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": value}]}


def connect(args: dict[str, Any]) -> str:
    try:
        with socket.create_connection((args["host"], int(args["port"])), timeout=3):
            return "connected"
    except OSError as exc:
        return f"refused: {exc}"


def egress_get(args: dict[str, Any]) -> str:
    path = os.environ.get("LLMOPS_EGRESS_SOCKET", "")
    if not path:
        return "no egress socket"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(path)
        sock.sendall(f"GET {args['url']} HTTP/1.1\r\nHost: x\r\nX-Llmops-Scheme: http\r\n\r\n".encode())
        return sock.recv(4096).decode(errors="replace").split("\r\n", 1)[0]


def listdir(args: dict[str, Any]) -> str:
    try:
        return "\n".join(sorted(os.listdir(args["path"])))
    except OSError as exc:
        return f"error: {exc}"


def read(args: dict[str, Any]) -> str:
    try:
        with open(args["path"], encoding="utf-8") as file:
            return file.read()
    except OSError as exc:
        return f"error: {exc}"


CALLS: dict[str, Callable[[dict[str, Any]], str]] = {
    "echo": lambda args: json.dumps(args, sort_keys=True),
    "env_sha256": lambda args: hashlib.sha256(os.environ.get(args["name"], "").encode()).hexdigest(),
    "connect": connect,
    "egress_get": egress_get,
    "listdir": listdir,
    "read": read,
}


def handle(message: dict[str, Any]) -> None:
    method, ident, params = message.get("method"), message.get("id"), message.get("params", {})
    if method == "initialize":
        print("starting up (a log line on stdout)", flush=True)
        send({"method": "notifications/message", "params": {"level": "info", "data": "hello"}})
        send({"id": "srv-1", "method": "ping"})
        reply = receive()
        assert reply.get("id") == "srv-1" and reply.get("result") == {}, reply
        send({"id": ident, "result": {"protocolVersion": params["protocolVersion"], "capabilities": {"tools": {}},
                                      "serverInfo": {"name": "tiny", "version": "1"}}})
    elif method == "tools/list":
        page = TOOLS[:3] if "cursor" not in params else TOOLS[3:]
        result: dict[str, Any] = {"tools": [{"name": n, "description": f"the {n} tool",
                                             "inputSchema": {"type": "object"}} for n in page]}
        if "cursor" not in params:
            result["nextCursor"] = "page-2"
        send({"id": ident, "result": result})
    elif method == "tools/call" and params["name"] in CALLS:
        send({"id": ident, "result": text(CALLS[params["name"]](params.get("arguments", {})))})
    elif ident is not None:
        send({"id": ident, "error": {"code": -32602, "message": f"unknown tool {params.get('name')!r}"}})


def misbehave(mode: str) -> None:
    if mode == "garbage":
        while True:
            print("this is not JSON " * 20, flush=True)
    if mode == "notrpc":
        receive()
        print("[1, 2, 3]", flush=True)
    if mode == "crash":
        receive()
        sys.stderr.write("boom: the server fell over\n")
        sys.exit(3)
    if mode == "silent":
        time.sleep(3600)
    if mode == "huge":
        ident = receive()["id"]
        send({"id": ident, "result": {"protocolVersion": "x", "serverInfo": {"name": "x" * 100_000}}})
    time.sleep(3600)


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "ok"
    if mode != "ok":
        misbehave(mode)
    while True:
        handle(receive())


if __name__ == "__main__":
    main()
