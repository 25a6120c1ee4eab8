"""CLI flags and the blocking uvicorn runner behind ``llmops sim``."""

from __future__ import annotations

import argparse
import socket
import sys

import uvicorn

from simulator.app import build_app
from simulator.behaviour import DEFAULT_MODELS, Behaviour

DEFAULT_PORT = 8400


class AnnouncingServer(uvicorn.Server):
    """Prints ``llmops-sim listening on http://HOST:PORT`` (the bound port, even for ``--port 0``)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.started or not self.servers:
            return
        bound = self.servers[0].sockets[0].getsockname()
        host = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        print(f"llmops-sim listening on http://{host}:{bound[1]}", flush=True)


def _models(value: str) -> tuple[str, ...]:
    models = tuple(m.strip() for m in value.split(",") if m.strip())
    if not models:
        raise argparse.ArgumentTypeError("--models needs at least one name")
    return models


def _rate(value: str) -> float:
    rate = float(value)
    if not 0.0 <= rate <= 1.0:
        raise argparse.ArgumentTypeError("--error-rate must be between 0 and 1")
    return rate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``llmops sim`` (also used by ``python -m simulator``)."""
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    add("--port", type=int, default=DEFAULT_PORT, help="TCP port; 0 picks a free one (printed on stdout)")
    add("--name", default="sim", help="instance name: system_fingerprint sim-NAME and header x-sim-name")
    add("--models", type=_models, default=DEFAULT_MODELS, help="comma-separated ids for GET /v1/models")
    add("--ttft-ms", type=float, default=0.0, help="delay before the first byte of an answer")
    add("--itl-ms", type=float, default=0.0, help="delay between stream chunks")
    add("--error-rate", type=_rate, default=0.0, help="fraction of API calls that fail (deterministic)")
    add("--error-status", type=int, default=500, help="HTTP status of injected errors")
    add("--api-key", default=None, help="require 'Authorization: Bearer KEY' or 'x-api-key: KEY'")
    add("--keep-alive-s", type=float, default=5.0, help="close idle client connections after this long")
    add("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])


def behaviour_from_args(args: argparse.Namespace) -> Behaviour:
    return Behaviour(
        name=args.name,
        models=tuple(args.models),
        ttft_ms=args.ttft_ms,
        itl_ms=args.itl_ms,
        error_rate=args.error_rate,
        error_status=args.error_status,
        api_key=args.api_key,
    )


def run(args: argparse.Namespace) -> None:
    """Serve until interrupted (uvloop + httptools, no access log)."""
    config = uvicorn.Config(
        build_app(behaviour_from_args(args)),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level=args.log_level,
        timeout_keep_alive=args.keep_alive_s,
    )
    AnnouncingServer(config).run()
    sys.stdout.flush()
