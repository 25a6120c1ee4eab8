"""Upstream MCP servers for tests and benchmarks, run for real.

``start_everything``: the reference server ``@modelcontextprotocol/server-everything`` (npm, pinned), run
with node in its streamable-HTTP mode on a free port (its endpoint is ``{url}/mcp``). ``start_recorder``:
``tests/support/recording_mcp.py``, an ``mcp`` SDK server that prints the credential of every request.
"""

from __future__ import annotations

import socket
from pathlib import Path

from tests.support.processes import ServerProcess, python_module

EVERYTHING = "@modelcontextprotocol/server-everything@2026.8.31"

# server-everything prints no URL when it listens: this launcher says it the way ServerProcess waits for.
_LAUNCHER = """\
const [port, module] = process.argv.slice(2);
process.env.PORT = port;
const said = console.error, print = console.log;
console.error = (...args) => {
  said(...args);
  if (String(args[0]).includes("listening on port")) print(`listening on http://127.0.0.1:${port}`);
};
console.log = () => {};  // one line per request otherwise
await import(module);
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_everything(npm_root: Path) -> ServerProcess:
    """server-everything from ``npm_root/node_modules`` (see ``tests/support/npm.py``)."""
    module = npm_root / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "transports"
    launcher = npm_root / "launch-everything.mjs"
    launcher.write_text(_LAUNCHER)
    argv = ["node", str(launcher), str(free_port()), (module / "streamableHttp.js").as_uri()]
    return ServerProcess(argv, stream="stdout").start(timeout_s=60)


def start_recorder() -> ServerProcess:
    return ServerProcess(python_module("tests.support.recording_mcp", "--port", "0")).start(timeout_s=90)
