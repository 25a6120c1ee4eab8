"""What a ``code`` job's script imports inside its sandbox: ``llmops_tools`` (stdlib only, mounted read-only)."""

from __future__ import annotations

from pathlib import Path

STUB_FILE = Path(__file__).with_name("llmops_tools.py")
