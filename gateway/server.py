"""Run an ASGI app on uvicorn (uvloop + httptools) on a socket we bind ourselves."""

from __future__ import annotations

import socket

import uvicorn
from starlette.types import ASGIApp


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit it: small responses must not wait for delayed ACKs.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(app: ASGIApp, sock: socket.socket, *, graceful_shutdown_s: float, log_level: str = "warning") -> None:
    """Block until SIGINT/SIGTERM; then stop accepting and let in-flight work finish (bounded)."""
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        log_level=log_level,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=max(1, round(graceful_shutdown_s)),
        timeout_keep_alive=30,
        backlog=2048,
    )
    uvicorn.Server(config).run(sockets=[sock])
