"""``llmops node``: ``add_arguments(parser)`` and ``run(args)``; the lead wires them into ``llmops``.

``llmops node [serve] --control-plane URL --secret S ...`` runs the agent; ``llmops node build-image``
builds the Docker sandbox image. The secret comes from ``--secret`` or ``LLMOPS_NODE_SECRET``; the
node refuses to start without one (it has no unauthenticated endpoint).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import uuid
from pathlib import Path

from executors.drivers import load_driver
from executors.drivers.base import SandboxDriver
from executors.errors import DriverUnavailable, ExecutorError
from executors.node.agent import NodeAgent
from executors.node.app import create_app
from executors.node.heartbeat import Heartbeater
from executors.workspaces import DEFAULT_ROOT, DEFAULT_TTL_S, Workspaces

SECRET_ENV = "LLMOPS_NODE_SECRET"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=["serve", "build-image"], default="serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--control-plane", default=None, help="control plane base URL for heartbeats")
    parser.add_argument("--secret", default=None, help=f"shared HMAC secret (default: ${SECRET_ENV})")
    parser.add_argument("--labels", default="", help="k=v,k=v (region, zone, ...)")
    parser.add_argument("--datasets", default="", help="comma-separated dataset names present here")
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--drivers", default="bwrap,docker,wasm")
    parser.add_argument("--node-id", default=None)
    parser.add_argument("--heartbeat-seconds", type=float, default=5.0)
    parser.add_argument("--pool-size", type=int, default=2, help="warm Docker containers")
    parser.add_argument("--workspace-root", type=Path, default=DEFAULT_ROOT, help="tenant workspaces (root's)")
    parser.add_argument("--workspace-ttl-s", type=float, default=DEFAULT_TTL_S, help="drop idle workspaces after")


def parse_labels(text: str) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in text.split(",") if item.strip())
    return {k.strip(): v.strip() for k, v in pairs}


def _csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def build_drivers(args: argparse.Namespace) -> list[SandboxDriver]:
    workspaces = Workspaces(args.workspace_root, ttl_s=args.workspace_ttl_s)  # one store, shared by the drivers
    options = {
        "bwrap": {"workspaces": workspaces},
        "wasm": {"workspaces": workspaces},
        "docker": {"pool_size": args.pool_size, "workspaces": workspaces},
    }
    return [load_driver(name, **options.get(name, {})) for name in _csv(args.drivers)]


async def serve(args: argparse.Namespace, secret: bytes) -> None:
    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((args.host, args.port))
    port = sock.getsockname()[1]
    url = f"http://{args.host}:{port}"
    agent = NodeAgent(
        args.node_id or f"node-{uuid.uuid4().hex[:8]}",
        build_drivers(args),
        slots=args.slots,
        labels=parse_labels(args.labels),
        datasets=_csv(args.datasets),
    )
    heartbeat = None
    if args.control_plane:
        heartbeat = Heartbeater(
            args.control_plane,
            secret,
            lambda: {**agent.status(), "url": url},
            interval=args.heartbeat_seconds,
        )
    app = create_app(agent, secret=secret, heartbeat=heartbeat)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    if server.started:
        print(f"llmops-node listening on {url}", flush=True)
    await task


def build_image_action() -> int:
    from executors.drivers.docker import DockerDriver

    try:
        import docker

        tag = DockerDriver.build(docker.from_env())
    except (ImportError, ExecutorError) as exc:
        print(f"build-image failed: {exc}", file=sys.stderr)
        return 1
    print(tag, flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    """Entry point for ``llmops node``; returns the process exit code."""
    if args.action == "build-image":
        return build_image_action()
    secret = args.secret or os.environ.get(SECRET_ENV, "")
    if not secret:
        print(f"llmops node needs --secret or ${SECRET_ENV}", file=sys.stderr)
        return 2
    os.environ.pop(SECRET_ENV, None)  # belt and braces: drivers never inherit it anyway
    try:
        asyncio.run(serve(args, secret.encode()))
    except DriverUnavailable as exc:
        print(f"llmops node: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
