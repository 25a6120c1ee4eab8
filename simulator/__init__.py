"""The model simulator: an OpenAI- and Anthropic-compatible server for tests, demos and benchmarks.

``llmops sim --port N`` calls :func:`add_arguments` then :func:`run`; :func:`build_app` gives the
Starlette app for in-process use (``httpx.ASGITransport``).
"""

from simulator.app import build_app
from simulator.behaviour import Behaviour
from simulator.cli import add_arguments, run

__all__ = ["Behaviour", "add_arguments", "build_app", "run"]
