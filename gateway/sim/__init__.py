"""The model simulator: an OpenAI- and Anthropic-compatible server for tests, demos and benchmarks.

``llmops sim --port N`` calls :func:`add_arguments` then :func:`run`; :func:`build_app` gives the
Starlette app for in-process use (``httpx.ASGITransport``).
"""

from gateway.sim.app import build_app
from gateway.sim.behaviour import Behaviour
from gateway.sim.cli import add_arguments, run

__all__ = ["Behaviour", "add_arguments", "build_app", "run"]
