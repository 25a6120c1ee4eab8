"""Tool definitions: the built-ins (python, shell, http_request, code) and user-defined ones from config.

A ``ToolDef`` is what the model sees (name, description, JSON-schema parameters) plus how the node
runs it (runtime, image/argv or wasm module) and what it may be granted (secret names, egress).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from executors.errors import JobRejected
from executors.spec import RUNTIMES, Runtime


@dataclass(frozen=True, slots=True)
class ToolDef:
    name: str
    description: str
    parameters: Mapping[str, Any]
    runtime: Runtime
    image: str | None = None
    argv: tuple[str, ...] = ()
    module: str | None = None
    secrets: tuple[str, ...] = ()
    egress: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def openai_schema(self) -> dict[str, Any]:
        """The ``tools[]`` entry of an OpenAI chat request."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": dict(self.parameters),
            },
        }


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


BUILTIN_TOOLS: dict[str, ToolDef] = {
    "python": ToolDef(
        "python",
        "Run Python 3 code in a sandbox; returns stdout, stderr and the exit code.",
        _object({"code": {"type": "string"}, "stdin": {"type": "string"}}, ["code"]),
        "python",
    ),
    "shell": ToolDef(
        "shell",
        "Run a POSIX shell script in a sandbox with no network.",
        _object({"script": {"type": "string"}, "stdin": {"type": "string"}}, ["script"]),
        "shell",
    ),
    "http_request": ToolDef(
        "http_request",
        "Make an HTTP request to a host the policy grants.",
        _object(
            {
                "method": {"type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]},
                "url": {"type": "string"},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "body": {"type": "string"},
            },
            ["url"],
        ),
        "http",
    ),
    "code": ToolDef(
        "code",
        "Run a Python 3 script in a sandbox that can call the other tools offered with this one: "
        "`from llmops_tools import call; out = call(\"python\", {\"code\": \"print(6 * 7)\"})` returns the "
        "tool's output as text (`tools.python(code=...)` is the same) and raises `llmops_tools.ToolError` "
        "(`.status` is \"denied\" or \"error\") when a call is denied by policy or fails. Each call is "
        "authorized as if you had made it. Only what the script prints is returned to you: keep large "
        "intermediate results inside the script.",
        _object({"code": {"type": "string", "description": "The Python 3 script."}}, ["code"]),
        "code",
    ),
}


def _strings(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise JobRejected(f"tool field {key!r} must be a list of strings")
    return tuple(value)


def tool_from_config(config: Mapping[str, Any]) -> ToolDef:
    """A user-defined tool: ``{"name", "description", "parameters", "image"+"command" | "module", ...}``."""
    name = config.get("name")
    if not isinstance(name, str) or not name or name in BUILTIN_TOOLS:
        raise JobRejected(f"invalid or reserved tool name {name!r}")
    image, module = config.get("image"), config.get("module")
    if (image is None) == (module is None):
        raise JobRejected(f"tool {name!r} needs exactly one of image or module")
    runtime: Runtime = "image" if image is not None else "wasm"
    assert runtime in RUNTIMES
    parameters = config.get("parameters", _object({}, []))
    if not isinstance(parameters, Mapping):
        raise JobRejected(f"tool {name!r}: parameters must be a JSON schema object")
    return ToolDef(
        name=name,
        description=str(config.get("description", "")),
        parameters=parameters,
        runtime=runtime,
        image=image,
        module=module,
        argv=_strings(config.get("command", []), "command"),
        secrets=_strings(config.get("secrets", []), "secrets"),
        egress=_strings(config.get("egress", []), "egress"),
    )
