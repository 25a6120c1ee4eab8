"""Parsing of ``CreateResponse`` bodies (the parts the simulator honours): input items, tools, format."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulator.chat_request import parse_tool_choice
from simulator.conversation import Conversation, Parts, read_parts
from simulator.text import count_tokens
from simulator.tools import ToolChoice, ToolSpec
from simulator.validate import bad, opt_bool, opt_dict, opt_int, req_str

MIN_OUTPUT_TOKENS = 16
_ROLES = frozenset({"user", "assistant", "system", "developer"})


@dataclass(frozen=True, slots=True)
class ResponsesRequest:
    model: str
    conversation: Conversation
    body: dict[str, Any]  # echoed back (instructions, tools, metadata, ...)
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = ToolChoice()
    parallel_tool_calls: bool = True
    max_output_tokens: int | None = None
    text_format: dict[str, Any] | None = None
    stream: bool = False


def _item(item: Any, index: int) -> tuple[str, Parts]:
    """(role, parts) of one input item; tool outputs count as role ``tool``, tool calls as ``call``."""
    param = f"input[{index}]"
    if not isinstance(item, dict):
        raise bad(param, f"'{param}' must be an object")
    kind = item.get("type", "message")
    if kind == "message":
        if item.get("role") not in _ROLES:
            raise bad(f"{param}.role", "messages need role 'user', 'assistant', 'system' or 'developer'")
        return str(item["role"]), read_parts(item.get("content"), f"{param}.content")
    if kind == "function_call_output":
        output = item.get("output")
        return "tool", read_parts(output if isinstance(output, list) else str(output or ""), f"{param}.output")
    if kind == "function_call":
        return "call", Parts(str(item.get("arguments") or ""))
    raise bad(f"{param}.type", f"unsupported input item type {kind!r}")


def read_input(value: Any, instructions: Any) -> Conversation:
    """The prompt is the last user message; a trailing ``function_call_output`` is a tool result."""
    if isinstance(value, str):
        items: list[tuple[str, Parts]] = [("user", Parts(value))]
    elif isinstance(value, list) and value:
        items = [_item(item, i) for i, item in enumerate(value)]
    else:
        raise bad("input", "'input' must be a string or a non-empty array of items")
    users = [parts for role, parts in items if role == "user"]
    last = users[-1] if users else items[-1][1]
    system = instructions if isinstance(instructions, str) else ""
    tokens = count_tokens(system) + sum(count_tokens(p.text) for _, p in items)
    role, final = items[-1]
    return Conversation(last.text, last.images, last.audio, tokens, final.text.strip() if role == "tool" else None)


def _tools(body: dict[str, Any]) -> tuple[ToolSpec, ...]:
    raw = body.get("tools") or []
    if not isinstance(raw, list):
        raise bad("tools", "'tools' must be an array")
    out: list[ToolSpec] = []
    for i, tool in enumerate(raw):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            continue
        if not isinstance(tool.get("name"), str):
            raise bad(f"tools[{i}].name", "function tools need a 'name'")
        params = tool.get("parameters")
        out.append(ToolSpec(tool["name"], params if isinstance(params, dict) else {}))
    return tuple(out)


def _tool_choice(value: Any) -> ToolChoice:
    if isinstance(value, dict) and value.get("type") == "function" and isinstance(value.get("name"), str):
        return ToolChoice("forced", value["name"])
    return parse_tool_choice(value)


def _text_format(body: dict[str, Any]) -> dict[str, Any] | None:
    fmt = opt_dict(opt_dict(body, "text"), "format")
    kind = fmt.get("type", "text")
    if kind not in ("text", "json_object", "json_schema"):
        raise bad("text.format.type", "'text.format.type' must be text, json_object or json_schema")
    if kind == "json_schema" and not isinstance(fmt.get("name"), str):
        raise bad("text.format.name", "json_schema formats need a 'name'")
    return None if kind == "text" else fmt


def parse_responses(body: dict[str, Any]) -> ResponsesRequest:
    return ResponsesRequest(
        model=req_str(body, "model"),
        conversation=read_input(body.get("input"), body.get("instructions")),
        body=body,
        tools=_tools(body),
        tool_choice=_tool_choice(body.get("tool_choice")),
        parallel_tool_calls=opt_bool(body, "parallel_tool_calls", True),
        max_output_tokens=opt_int(body, "max_output_tokens", None, MIN_OUTPUT_TOKENS, 1 << 31),
        text_format=_text_format(body),
        stream=opt_bool(body, "stream", False),
    )
