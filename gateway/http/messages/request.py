"""Anthropic Messages request → the gateway's chat completion request (pure functions).

=======================  ===================================================================
Messages                 chat completions
=======================  ===================================================================
``system``               a first ``system`` message (text blocks joined by a blank line)
user ``text``/``image``  user content (one text block: a string; otherwise parts, images as
                         ``image_url``: a ``data:`` URL for base64 sources, the URL for url ones)
user ``tool_result``     a ``tool`` message per result, before the rest of the turn;
                         ``is_error`` prefixes the text with ``Error:``; images in a result
                         follow in the user message
assistant text/tool_use  one assistant message: the text, and ``tool_calls`` (input as JSON)
``thinking`` blocks      dropped (a chat backend cannot take them back)
``max_tokens``, ``stop_sequences``, ``temperature``, ``top_p``: ``max_tokens``, ``stop``, same
``top_k``                dropped (chat has no such parameter)
``tools``                ``function`` tools (``input_schema`` → ``parameters``)
``tool_choice``          auto → auto, any → required, tool → the named function, none → none;
                         ``disable_parallel_tool_use`` → ``parallel_tool_calls: false``
``metadata.user_id``     ``user``
``output_config.format``  ``response_format`` of type ``json_schema`` (``effort`` is dropped)
``stream``               ``stream`` with ``stream_options.include_usage`` (usage for the final event)
=======================  ===================================================================

Other top-level fields pass through unchanged, as on the chat route (the ``llmops`` extension, vendor
knobs), except Anthropic-only ones no chat backend takes (``thinking``, ``service_tier``, ...).
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.http.messages.schema import (
    AnyChoice,
    AutoChoice,
    Base64Source,
    Block,
    ImageBlock,
    Message,
    MessagesInput,
    MessagesRequest,
    NoneChoice,
    TextBlock,
    ToolChoice,
    ToolResultBlock,
    ToolUseBlock,
)
from gateway.kernel.errors import InvalidRequest, UnsupportedCapability

Json = dict[str, Any]
HANDLED = frozenset({"model", "max_tokens", "messages", "system", "stop_sequences", "temperature", "top_p",
                     "top_k", "tools", "tool_choice", "metadata", "output_config", "stream"})
DROPPED = frozenset({"thinking", "service_tier", "container", "mcp_servers", "context_management", "cache_control",
                     "diagnostics", "inference_geo", "speed", "user_profile_id", "workspace_id", "betas"})


def to_chat_request(req: MessagesRequest, raw: Json) -> Json:
    """The chat request for a validated Messages request (``raw``: the same body, for pass-through)."""
    out: Json = {key: value for key, value in raw.items() if key not in HANDLED and key not in DROPPED}
    out.update(chat_body(req))
    out["max_tokens"] = req.max_tokens
    if req.stop_sequences:
        out["stop"] = list(req.stop_sequences)
    if req.temperature is not None:
        out["temperature"] = req.temperature
    if req.top_p is not None:
        out["top_p"] = req.top_p
    if req.metadata is not None and req.metadata.user_id:
        out["user"] = req.metadata.user_id
    if req.output_config is not None and req.output_config.format is not None:
        schema = req.output_config.format.schema
        out["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    if req.stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def chat_body(inp: MessagesInput) -> Json:
    """Model, messages and tools: what both ``/v1/messages`` and ``count_tokens`` carry."""
    out: Json = {"model": inp.model, "messages": chat_messages(inp)}
    tools = chat_tools(inp)
    if tools:
        out["tools"] = tools
        if inp.tool_choice is not None:
            out.update(chat_tool_choice(inp.tool_choice))
    return out


def chat_messages(inp: MessagesInput) -> list[Json]:
    messages: list[Json] = []
    system = system_text(inp.system)
    if system:
        messages.append({"role": "system", "content": system})
    for message in inp.messages:
        messages.extend(_turn(message))
    return messages


def system_text(system: str | list[TextBlock] | None) -> str:
    if isinstance(system, list):
        return "\n\n".join(block.text for block in system)
    return system or ""


def _turn(message: Message) -> list[Json]:
    if isinstance(message.content, str):
        return [{"role": message.role, "content": message.content}]
    if message.role == "assistant":
        return [_assistant(message.content)]
    return _user(message.content)


def _assistant(blocks: list[Block]) -> Json:
    text = "".join(b.text for b in blocks if isinstance(b, TextBlock))
    calls = [_tool_call(b) for b in blocks if isinstance(b, ToolUseBlock)]
    out: Json = {"role": "assistant", "content": text or (None if calls else "")}
    if calls:
        out["tool_calls"] = calls
    return out


def _tool_call(block: ToolUseBlock) -> Json:
    arguments = orjson.dumps(block.input).decode()
    return {"id": block.id, "type": "function", "function": {"name": block.name, "arguments": arguments}}


def _user(blocks: list[Block]) -> list[Json]:
    """Tool results first (each answers a call of the previous assistant turn), then the user's parts."""
    results: list[Json] = []
    parts: list[Json] = []
    for block in blocks:
        if isinstance(block, ToolResultBlock):
            results.append(_tool_message(block))
            parts.extend(_image_part(b) for b in _result_blocks(block) if isinstance(b, ImageBlock))
        elif isinstance(block, TextBlock):
            parts.append({"type": "text", "text": block.text})
        elif isinstance(block, ImageBlock):
            parts.append(_image_part(block))
    if not parts:
        return results
    if len(parts) == 1 and parts[0]["type"] == "text":
        return [*results, {"role": "user", "content": parts[0]["text"]}]
    return [*results, {"role": "user", "content": parts}]


def _result_blocks(block: ToolResultBlock) -> list[TextBlock | ImageBlock]:
    return block.content if isinstance(block.content, list) else []


def _tool_message(block: ToolResultBlock) -> Json:
    content = block.content
    if isinstance(content, list):
        text = "\n".join(b.text for b in content if isinstance(b, TextBlock))
    else:
        text = content or ""
    if block.is_error:
        text = "Error: " + text
    return {"role": "tool", "tool_call_id": block.tool_use_id, "content": text}


def _image_part(block: ImageBlock) -> Json:
    source = block.source
    if isinstance(source, Base64Source):
        url = f"data:{source.media_type};base64,{source.data}"
    else:
        url = source.url
    return {"type": "image_url", "image_url": {"url": url}}


def chat_tools(inp: MessagesInput) -> list[Json]:
    """Client tools as chat ``function`` tools; Anthropic's server tools are a 400 naming the tool."""
    out: list[Json] = []
    for i, tool in enumerate(inp.tools or ()):
        if tool.type not in (None, "custom"):
            raise UnsupportedCapability(
                f"Tool type {tool.type!r} is one of Anthropic's server tools, which this gateway does not run; "
                "declare a client tool (name, description, input_schema).", param=f"tools[{i}].type")
        if tool.input_schema is None:
            raise InvalidRequest(f"Missing required parameter: 'tools[{i}].input_schema'.",
                                 param=f"tools[{i}].input_schema", code="invalid_value")
        function: Json = {"name": tool.name, "parameters": tool.input_schema}
        if tool.description:
            function["description"] = tool.description
        out.append({"type": "function", "function": function})
    return out


def chat_tool_choice(choice: ToolChoice) -> Json:
    if isinstance(choice, NoneChoice):
        return {"tool_choice": "none"}
    out: Json
    if isinstance(choice, AutoChoice):
        out = {"tool_choice": "auto"}
    elif isinstance(choice, AnyChoice):
        out = {"tool_choice": "required"}
    else:
        out = {"tool_choice": {"type": "function", "function": {"name": choice.name}}}
    if choice.disable_parallel_tool_use:
        out["parallel_tool_calls"] = False
    return out
