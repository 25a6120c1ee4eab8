"""A Responses request as a chat completions request, for backends that speak only chat (pure).

``instructions`` → a leading system message; message items → chat messages (``developer`` → ``system``,
parts → chat parts, all-text content → one string); ``function_call`` items → the assistant's
``tool_calls``; ``function_call_output`` → ``tool`` messages; ``input_file`` (inline data, resolved by
the endpoint) → its text. Function tools, ``tool_choice``, ``text.format`` (→ ``response_format``),
``max_output_tokens``, sampling, ``reasoning.effort``, logprobs (asked for by ``include`` or
``top_logprobs``) and the caller's identifiers carry over.
``file_search`` is the gateway's (the rag stage); other hosted tools and items need a native backend.
MCP items (the tools stage's upstream MCP tools) read as the calls they were: ``mcp_call`` → the
assistant's tool call (``label__name``) and its output (or error); a refused ``mcp_approval_response`` →
the call and a tool message saying it did not run; ``mcp_list_tools`` and ``mcp_approval_request`` alone
add nothing.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from gateway.kernel.errors import InvalidRequest, UnsupportedCapability
from gateway.kernel.responses import as_items, content_text
from gateway.services.vectorstores.extract import extract_text

PASSED = ("temperature", "top_p", "user", "safety_identifier", "prompt_cache_key", "service_tier", "top_logprobs")
LOGPROBS = "message.output_text.logprobs"
GATEWAY_TOOLS = frozenset({"file_search"})
_SKIPPED_ITEMS = frozenset({"file_search_call", "reasoning", "mcp_list_tools"})
_MCP_ITEMS = frozenset({"mcp_call", "mcp_approval_request", "mcp_approval_response"})
NOT_APPROVED = "error: the call was not approved and did not run"
_CHAT_ROLES = {"developer": "system", "system": "system", "user": "user", "assistant": "assistant"}


def chat_request(body: dict[str, Any], stream: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"model": body.get("model"), "messages": chat_messages(body)}
    out.update({key: body[key] for key in PASSED if body.get(key) is not None})
    if body.get("max_output_tokens") is not None:
        out["max_tokens"] = body["max_output_tokens"]
    if wants_logprobs(body):
        out["logprobs"] = True
    effort = (body.get("reasoning") or {}).get("effort")
    if effort is not None:
        out["reasoning_effort"] = effort
    fmt = response_format((body.get("text") or {}).get("format"))
    if fmt is not None:
        out["response_format"] = fmt
    _add_tools(out, body)
    if stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def wants_logprobs(body: dict[str, Any]) -> bool:
    """``include: ["message.output_text.logprobs"]`` or ``top_logprobs``: the output text carries them."""
    include = body.get("include")
    return (isinstance(include, list) and LOGPROBS in include) or bool(body.get("top_logprobs"))


def chat_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        out.append({"role": "system", "content": instructions})
    requests: dict[str, dict[str, Any]] = {}  # mcp_approval_request items by id
    for index, item in enumerate(as_items(body.get("input"))):
        if item.get("type") in _MCP_ITEMS:
            _add_mcp(out, item, requests)
        else:
            _add_item(out, item, index)
    return out


def _add_mcp(out: list[dict[str, Any]], item: dict[str, Any], requests: dict[str, dict[str, Any]]) -> None:
    kind = item["type"]
    if kind == "mcp_approval_request":
        requests[str(item.get("id"))] = item
    elif kind == "mcp_approval_response":
        asked = requests.get(str(item.get("approval_request_id")))
        if asked is not None and item.get("approve") is not True:
            _add_call(out, str(asked.get("id")), _mcp_name(asked), str(asked.get("arguments") or ""))
            out.append({"role": "tool", "tool_call_id": str(asked.get("id")), "content": NOT_APPROVED})
    else:
        call_id = str(item.get("approval_request_id") or item.get("id"))
        _add_call(out, call_id, _mcp_name(item), str(item.get("arguments") or ""))
        error = item.get("error")
        text = item.get("output") if error is None else f"error: {_error_text(error)}"
        out.append({"role": "tool", "tool_call_id": call_id, "content": str(text or "")})


def _error_text(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)
    blocks = error.get("content")
    if isinstance(blocks, list):
        return "\n".join(str(b.get("text", "")) for b in blocks if isinstance(b, dict))
    return str(error.get("message") or blocks or "")


def _mcp_name(item: dict[str, Any]) -> str:
    return f"{item.get('server_label')}__{item.get('name')}"


def _add_call(out: list[dict[str, Any]], call_id: str | None, name: Any, arguments: str) -> None:
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    last = out[-1] if out else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
    else:
        out.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _add_item(out: list[dict[str, Any]], item: dict[str, Any], index: int) -> None:
    kind = item.get("type", "message")
    if kind == "message":
        role = _CHAT_ROLES[item["role"]]
        out.append({"role": role, "content": _content(item.get("content"), role, f"input[{index}].content")})
    elif kind == "function_call":
        _add_call(out, item.get("call_id"), item.get("name"), item.get("arguments") or "")
    elif kind == "function_call_output":
        output = item.get("output")
        text = output if isinstance(output, str) else content_text(output)
        out.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": text})
    elif kind not in _SKIPPED_ITEMS:
        raise UnsupportedCapability(f"Input items of type {kind!r} need a backend that speaks the Responses API.",
                                    param=f"input[{index}].type")


def _content(content: Any, role: str, param: str) -> Any:
    if isinstance(content, str) or role != "user":
        return content_text(content)
    parts = [_part(part, f"{param}[{i}]") for i, part in enumerate(content or ())]
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def _part(part: dict[str, Any], param: str) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            raise InvalidRequest("An input_image needs an image_url or a file_id.", param=param)
        image: dict[str, Any] = {"url": url}
        if part.get("detail") in ("low", "high", "auto"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        return {"type": "text", "text": file_text(part, param)}
    return {"type": "text", "text": str(part.get("text") or "")}


def file_text(part: dict[str, Any], param: str) -> str:
    """The text of an inline file (``file_data`` as a data URL or bare base64), framed with its name."""
    data = part.get("file_data")
    if not isinstance(data, str):
        raise UnsupportedCapability("Files by URL need a backend that speaks the Responses API.", param=param)
    name = str(part.get("filename") or "file")
    try:
        raw = base64.b64decode(data.split(";base64,", 1)[-1], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("file_data is not valid base64.", param=param + ".file_data") from None
    return f'<file name="{name}">\n{extract_text(name, raw)}\n</file>'


def response_format(fmt: Any) -> dict[str, Any] | None:
    if not isinstance(fmt, dict) or fmt.get("type") not in ("json_schema", "json_object"):
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    spec = {key: fmt[key] for key in ("name", "schema", "strict", "description") if fmt.get(key) is not None}
    return {"type": "json_schema", "json_schema": spec}


def _add_tools(out: dict[str, Any], body: dict[str, Any]) -> None:
    tools = [chat_tool(tool, i) for i, tool in enumerate(body.get("tools") or ())]
    functions = [t for t in tools if t is not None]
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = {t.get("name") for t in choice.get("tools") or () if isinstance(t, dict)}
        functions = [t for t in functions if t["function"]["name"] in allowed]
        choice = choice.get("mode") or "auto"
    if not functions:
        return
    out["tools"] = functions
    chat_choice = _tool_choice(choice)
    if chat_choice is not None:
        out["tool_choice"] = chat_choice
    if body.get("parallel_tool_calls") is not None:
        out["parallel_tool_calls"] = body["parallel_tool_calls"]


def chat_tool(tool: dict[str, Any], index: int) -> dict[str, Any] | None:
    kind = tool.get("type")
    if kind in GATEWAY_TOOLS:
        return None
    if kind != "function":
        raise UnsupportedCapability(f"Tools of type {kind!r} need a backend that speaks the Responses API.",
                                    param=f"tools[{index}].type")
    spec = {key: tool[key] for key in ("name", "description", "parameters", "strict") if tool.get(key) is not None}
    return {"type": "function", "function": spec}


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, str):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    return None  # hosted tool choices (file_search) are the gateway's
