"""A loopback HTTP service that answers only requests carrying ``Authorization: Bearer TOKEN``
(for the credential broker's tests: the token must reach it and nothing else)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class BearerService:
    port: int
    seen: list[str] = field(default_factory=list)  # the Authorization headers it received

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/data"


@contextmanager
def bearer_service(token: str, answer: str) -> Iterator[BearerService]:
    service = BearerService(0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            service.seen.append(self.headers.get("authorization", ""))
            ok = self.headers.get("authorization") == f"Bearer {token}"
            body = (answer if ok else "missing or wrong token").encode()
            self.send_response(200 if ok else 401)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    service.port = int(server.server_address[1])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()
