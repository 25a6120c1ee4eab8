"""Tool-call decisions shared by chat completions and Anthropic messages.

Rules, in order: tool_choice "none" (or no tools) -> no call; a forced function -> call it;
"required" -> mentioned tools, else the first; last message is a tool result -> answer in text;
"auto" -> the ``python`` SHA-256 special case, else every tool whose name the prompt mentions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from simulator.jsonvalues import build_value
from simulator.text import digest

ChoiceMode = Literal["auto", "none", "required", "forced"]
_QUOTED = re.compile(r'"([^"]*)"|\u201c([^\u201d]*)\u201d|(?<!\w)\'([^\']*)\'(?!\w)')
_SHA256 = re.compile(r"sha[-_ ]?256", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolChoice:
    mode: ChoiceMode = "auto"
    name: str | None = None


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """A decided call: ``arguments`` is the JSON text sent to the client."""

    id_seed: str
    name: str
    arguments: str

    def call_id(self, prefix: str, index: int) -> str:
        return prefix + digest(self.id_seed, self.name, str(index)).hex()[:24]


def quoted_strings(text: str) -> list[str]:
    """Quoted substrings in order; apostrophes inside words (``don't``) are not quotes."""
    return [next(g for g in match.groups() if g is not None) for match in _QUOTED.finditer(text)]


def python_sha256_code(prompt: str) -> str | None:
    """``print(sha256(...).hexdigest())`` code when the prompt asks for a SHA-256 of a quoted string."""
    quotes = quoted_strings(prompt)
    if not _SHA256.search(prompt) or not quotes:
        return None
    return f"import hashlib\nprint(hashlib.sha256({quotes[0].encode()!r}).hexdigest())"


def build_arguments(parameters: dict[str, Any], prompt: str) -> str:
    value = build_value(parameters, quoted_strings(prompt)) if parameters else {}
    return json.dumps(value if isinstance(value, dict) else {"value": value})


def _mentioned(tools: list[ToolSpec], prompt: str) -> list[ToolSpec]:
    lowered = prompt.lower()
    return [t for t in tools if re.search(rf"(?<![\w]){re.escape(t.name.lower())}(?![\w])", lowered)]


def _plan(tool: ToolSpec, prompt: str) -> PlannedCall:
    code = python_sha256_code(prompt) if tool.name == "python" else None
    args = json.dumps({"code": code}) if code is not None else build_arguments(tool.parameters, prompt)
    return PlannedCall(prompt, tool.name, args)


def _auto(tools: list[ToolSpec], prompt: str) -> list[ToolSpec]:
    python = [t for t in tools if t.name == "python"]
    if python and python_sha256_code(prompt) is not None:
        return python
    return _mentioned(tools, prompt)


def _selected(tools: list[ToolSpec], choice: ToolChoice, prompt: str, after_tool: bool) -> list[ToolSpec]:
    if choice.mode == "forced":
        return [t for t in tools if t.name == choice.name][:1]
    if choice.mode == "required":
        return _auto(tools, prompt) or tools[:1]
    return [] if after_tool else _auto(tools, prompt)


def plan_tool_calls(
    tools: list[ToolSpec], choice: ToolChoice, prompt: str, *, after_tool: bool, parallel: bool = True
) -> list[PlannedCall]:
    """The calls to make (empty: answer in text). ``after_tool``: the last message is a tool result."""
    if not tools or choice.mode == "none":
        return []
    chosen = _selected(tools, choice, prompt, after_tool)
    return [_plan(t, prompt) for t in (chosen if parallel else chosen[:1])]
