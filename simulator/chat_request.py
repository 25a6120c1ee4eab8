"""Parsing and validation of ``CreateChatCompletionRequest`` (the parts the simulator honours)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulator.conversation import Conversation, read_chat_messages
from simulator.tools import ToolChoice, ToolSpec
from simulator.validate import bad, opt_bool, opt_dict, opt_int, opt_str, req_list, req_str, stop_list

MAX_N = 16


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    conversation: Conversation
    n: int = 1
    stream: bool = False
    include_usage: bool = False
    stops: tuple[str, ...] = ()
    max_tokens: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    response_format: dict[str, Any] | None = None
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = ToolChoice()
    parallel_tool_calls: bool = True
    seed: int = 0
    reasoning_effort: str = ""  # set: the answer comes with ``reasoning_content``, as vLLM's reasoning parsers give


def _function_tool(tool: Any, index: int) -> ToolSpec | None:
    if not isinstance(tool, dict) or tool.get("type", "function") != "function":
        return None
    fn = tool.get("function")
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise bad(f"tools[{index}].function", "function tools need a 'function' object with a 'name'")
    params = fn.get("parameters")
    return ToolSpec(fn["name"], params if isinstance(params, dict) else {})


def parse_tools(body: dict[str, Any]) -> tuple[ToolSpec, ...]:
    raw = body.get("tools") or []
    if not isinstance(raw, list):
        raise bad("tools", "'tools' must be an array")
    return tuple(t for t in (_function_tool(x, i) for i, x in enumerate(raw)) if t is not None)


def parse_tool_choice(value: Any) -> ToolChoice:
    if value is None or value == "auto":
        return ToolChoice()
    if value in ("none", "required"):
        return ToolChoice(value)
    if isinstance(value, dict) and value.get("type") == "function":
        name = (value.get("function") or {}).get("name")
        if isinstance(name, str):
            return ToolChoice("forced", name)
    if isinstance(value, dict) and value.get("type") == "allowed_tools":
        return ToolChoice("required" if value.get("mode") == "required" else "auto")
    raise bad("tool_choice", "'tool_choice' must be 'none', 'auto', 'required' or a named function")


def _response_format(body: dict[str, Any]) -> dict[str, Any] | None:
    fmt = opt_dict(body, "response_format")
    kind = fmt.get("type", "text")
    if kind not in ("text", "json_object", "json_schema"):
        raise bad("response_format.type", "'response_format.type' must be text, json_object or json_schema")
    if kind == "json_schema" and not isinstance((fmt.get("json_schema") or {}).get("name"), str):
        raise bad("response_format.json_schema", "'json_schema' needs a 'name'")
    return None if kind == "text" else fmt


def _max_tokens(body: dict[str, Any]) -> int | None:
    value = opt_int(body, "max_completion_tokens", None, 1, 1 << 31)
    return value if value is not None else opt_int(body, "max_tokens", None, 1, 1 << 31)


def parse_chat(body: dict[str, Any]) -> ChatRequest:
    return ChatRequest(
        model=req_str(body, "model"),
        conversation=read_chat_messages(req_list(body, "messages")),
        n=opt_int(body, "n", 1, 1, MAX_N) or 1,
        stream=opt_bool(body, "stream", False),
        include_usage=opt_bool(opt_dict(body, "stream_options"), "include_usage", False),
        stops=stop_list(body, "stop"),
        max_tokens=_max_tokens(body),
        logprobs=opt_bool(body, "logprobs", False),
        top_logprobs=opt_int(body, "top_logprobs", 0, 0, 20) or 0,
        response_format=_response_format(body),
        tools=parse_tools(body),
        tool_choice=parse_tool_choice(body.get("tool_choice")),
        parallel_tool_calls=opt_bool(body, "parallel_tool_calls", True),
        seed=opt_int(body, "seed", 0, -(1 << 63), (1 << 64) - 1) or 0,
        reasoning_effort=opt_str(body, "reasoning_effort", ""),
    )
