"""``llmops serve``: run the gateway; without a config, on embedded defaults with a simulator."""

from __future__ import annotations

import argparse
import os
import sys

from gateway.app import build_app
from gateway.checks import check
from gateway.embedded import SimulatorProcess, default_config
from gateway.kernel.config import ConfigError, Settings, load_settings, settings_from_mapping
from gateway.kernel.observability.logging import JsonLog, bridge_stdlib
from gateway.kernel.observability.metrics import Metrics
from gateway.server import bind, serve
from gateway.wiring import Gateway


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", default=os.environ.get("LLMOPS_CONFIG"),
                        help="YAML configuration (default: $LLMOPS_CONFIG, else embedded defaults)")
    parser.add_argument("--host", help="listen address (overrides server.host)")
    parser.add_argument("--port", type=int, help="listen port, 0 for any free one (overrides server.port)")


def run(args: argparse.Namespace) -> int:
    simulator: SimulatorProcess | None = None
    try:
        if args.config:
            settings = load_settings(args.config)
        else:
            simulator = SimulatorProcess()
            settings = settings_from_mapping(default_config(simulator.start(), os.environ))
        return _serve(settings, args, embedded=simulator is not None)
    except ConfigError as exc:
        print(f"invalid configuration:\n  {str(exc).replace(chr(10), chr(10) + '  ')}", file=sys.stderr)
        return 2
    finally:
        if simulator is not None:
            simulator.stop()


def _serve(settings: Settings, args: argparse.Namespace, *, embedded: bool) -> int:
    server = settings.server.model_copy(
        update={k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}
    )
    settings = check(settings.model_copy(update={"server": server}))
    log = JsonLog(level=server.log_level)
    bridge_stdlib(log, "warning")
    gateway = Gateway(settings, log, Metrics())
    sock = bind(server.host, server.port)
    host, port = sock.getsockname()[:2]
    _announce(f"http://{host}:{port}", settings, embedded)
    serve(build_app(gateway), sock, graceful_shutdown_s=server.graceful_shutdown_s)
    return 0



def _announce(url: str, settings: Settings, embedded: bool) -> None:
    model = settings.models[0].name if settings.models else "MODEL"
    lines = [f"llmops gateway listening on {url}"]
    if embedded:
        lines.append("embedded defaults: simulator backend, in-memory state")
    lines += [
        "try:",
        f"  curl -s {url}/v1/chat/completions -H 'Content-Type: application/json' \\",
        f"    -d '{{\"model\": \"{model}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello!\"}}]}}'",
    ]
    print("\n".join(lines), file=sys.stderr, flush=True)
