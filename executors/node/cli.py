"""``llmops node``: ``add_arguments(parser)`` and ``run(args)``; the lead wires them into ``llmops``.

``llmops node [serve] --control-plane URL --join TOKEN ...`` enrolls once (a short-lived, single-use
join token from ``llmops node token``) and runs the agent over TLS; later starts reuse the identity
in ``--state-dir``. The token may also come from ``$LLMOPS_JOIN_TOKEN`` or a 0600 ``--join-file``
(argv is world-readable). ``llmops node token|nodes|revoke`` call the admin API;
``llmops node build-image`` builds the Docker sandbox image.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import sys
import uuid
from pathlib import Path

from executors.drivers import load_driver
from executors.drivers.base import SandboxDriver
from executors.errors import ExecutorError
from executors.node.admin import admin_action
from executors.node.agent import NodeAgent
from executors.node.app import create_app
from executors.node.heartbeat import Heartbeater
from executors.node.identity import NodeIdentity, enroll, load_identity, state_dir
from executors.signing import read_private
from executors.workspaces import DEFAULT_ROOT, DEFAULT_TTL_S, Workspaces

JOIN_ENV = "LLMOPS_JOIN_TOKEN"
STATE_ENV = "LLMOPS_NODE_STATE"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=["serve", "build-image", "token", "nodes", "revoke"],
                        default="serve")
    parser.add_argument("target", nargs="?", default=None, help="revoke: the node id")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--control-plane", default=None, help="control plane base URL (enrollment, heartbeats)")
    parser.add_argument("--join", default=None, help=f"join token, single use (better: ${JOIN_ENV} or --join-file)")
    parser.add_argument("--join-file", type=Path, default=None, help="a 0600 file holding the join token")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help=f"0700 directory for keys and identity (default: ${STATE_ENV} or ~/.llmops-node)")
    parser.add_argument("--labels", default="", help="k=v,k=v (token: labels granted; serve: reported)")
    parser.add_argument("--ttl", type=float, default=600.0, help="token: lifetime in seconds")
    parser.add_argument("--datasets", default="", help="comma-separated dataset names present here")
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--drivers", default="bwrap,docker,wasm")
    parser.add_argument("--node-id", default=None)
    parser.add_argument("--heartbeat-seconds", type=float, default=5.0)
    parser.add_argument("--pool-size", type=int, default=2, help="warm Docker containers")
    parser.add_argument("--workspace-root", type=Path, default=DEFAULT_ROOT, help="tenant workspaces (root's)")
    parser.add_argument("--workspace-ttl-s", type=float, default=DEFAULT_TTL_S, help="drop idle workspaces after")
    parser.add_argument("--mcp-path", action="append", type=Path, default=[], metavar="DIR",
                        help="a directory of stdio MCP server code (e.g. node_modules) that mcp_stdio sandboxes may "
                        "read, at the same path; repeatable; must be readable by uid 65534")


def parse_labels(text: str) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in text.split(",") if item.strip())
    return {k.strip(): v.strip() for k, v in pairs}


def _csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def build_drivers(args: argparse.Namespace) -> list[SandboxDriver]:
    workspaces = Workspaces(args.workspace_root, ttl_s=args.workspace_ttl_s)  # one store, shared by the drivers
    options = {
        "bwrap": {"workspaces": workspaces, "mcp_paths": args.mcp_path},
        "wasm": {"workspaces": workspaces},
        "docker": {"pool_size": args.pool_size, "workspaces": workspaces},
    }
    return [load_driver(name, **options.get(name, {})) for name in _csv(args.drivers)]


def join_token(args: argparse.Namespace) -> str:
    """The join token: ``--join``, else ``$LLMOPS_JOIN_TOKEN``, else a 0600 ``--join-file``; "" if none."""
    if args.join:
        return str(args.join)
    token = os.environ.pop(JOIN_ENV, "")
    if not token and args.join_file is not None:
        token = read_private(args.join_file).decode().strip()
    return token


async def identity_for(args: argparse.Namespace) -> NodeIdentity:
    """The identity saved in the state dir, or a new one from enrolling with the join token."""
    state = state_dir(args.state_dir or Path(os.environ.get(STATE_ENV, Path.home() / ".llmops-node")))
    identity = load_identity(state)
    if identity is not None:
        return identity
    token = join_token(args)
    if not token or not args.control_plane:
        raise ExecutorError(f"not enrolled yet: run once with --control-plane URL and a join token "
                            f"(--join, ${JOIN_ENV} or --join-file); state dir {state}")
    return await enroll(args.control_plane, token, args.node_id or f"node-{uuid.uuid4().hex[:8]}", state)


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    return sock


async def serve(args: argparse.Namespace) -> None:
    import uvicorn

    drivers = build_drivers(args)  # first: a bad flag (e.g. --mcp-path) fails before enrolling
    identity = await identity_for(args)
    sock = _bind(args.host, args.port)
    url = f"https://{args.host}:{sock.getsockname()[1]}"
    agent = NodeAgent(identity.node_id, drivers, slots=args.slots, labels=parse_labels(args.labels),
                      datasets=_csv(args.datasets))
    boot = secrets.token_hex(8)  # this process: jobs signed for an earlier one are refused
    heartbeat = None
    if args.control_plane:
        heartbeat = Heartbeater(args.control_plane, identity.node_id, identity.key,
                                lambda: {**agent.status(), "url": url, "boot": boot},
                                interval=args.heartbeat_seconds)
    app = create_app(agent, identity=identity, boot=boot, heartbeat=heartbeat)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", ssl_certfile=str(identity.cert_file),
                            ssl_keyfile=str(identity.tls_key_file))
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    if server.started:
        up = ",".join(name for name, d in agent.status()["drivers"].items() if d["available"])
        print(f"llmops-node {identity.node_id} drivers: {up}", flush=True)
        print(f"llmops-node {identity.node_id} listening on {url}", flush=True)
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
    if args.action in ("token", "nodes", "revoke"):
        return admin_action(args, parse_labels(args.labels))
    try:
        asyncio.run(serve(args))
    except ExecutorError as exc:
        print(f"llmops node: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
