"""``llmops serve``: run the gateway; without a config, on embedded defaults with a simulator."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

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
                        help="YAML configuration, or a directory of YAML files merged in name order (default: "
                        "$LLMOPS_CONFIG, else embedded defaults); watched and applied live on change and SIGHUP")
    parser.add_argument("--host", help="listen address (overrides server.host)")
    parser.add_argument("--port", type=int, help="listen port, 0 for any free one (overrides server.port)")


def run(args: argparse.Namespace) -> int:
    simulator: SimulatorProcess | None = None
    # SIGTERM unwinds like SIGINT, through ``finally`` (uvicorn re-raises it once it has drained),
    # so the embedded simulator is reaped either way.
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
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
    except StartupFailed as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
        if simulator is not None:
            simulator.stop()


class StartupFailed(Exception):
    """The configuration is valid but the gateway could not start (a port in use, a store down)."""


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _serve(settings: Settings, args: argparse.Namespace, *, embedded: bool) -> int:
    overrides = {k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}

    def prepare(desired: Settings) -> Settings:
        """The command line wins over every desired state (the file's, reloaded ones, the admin API's)."""
        return desired.model_copy(update={"server": desired.server.model_copy(update=overrides)})

    settings = check(prepare(settings))
    server = settings.server
    try:
        sock = bind(server.host, server.port)
    except OSError as exc:
        raise StartupFailed(f"server.port: cannot listen on {server.host}:{server.port} ({exc.strerror})") from None
    log = JsonLog(level=server.log_level)
    bridge_stdlib(log, "warning")
    gateway = Gateway(settings, log, Metrics())
    host, port = sock.getsockname()[:2]
    app = build_app(gateway, on_started=lambda: _announce(f"http://{host}:{port}", settings, embedded),
                    source=None if embedded else Path(args.config), prepare=prepare)
    try:
        serve(app, sock, graceful_shutdown_s=server.graceful_shutdown_s)
    except SystemExit:  # uvicorn exits (3) when the lifespan startup failed
        if gateway.startup_error is None:
            raise
    if gateway.startup_error is not None:
        raise StartupFailed(gateway.startup_error)
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
