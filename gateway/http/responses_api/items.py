"""Checks on a Responses request beyond its typed view (items, tools, formats), each a 400 naming its
``param``; and the caller's own input as stored items (normalized, with ids).

Item types the gateway does not know pass unchecked: a native backend may serve them, and the
translation to chat names the ones it cannot.
"""

from __future__ import annotations

from typing import Any

from gateway.kernel.errors import InvalidRequest
from gateway.kernel.responses import as_items, new_id
from gateway.kernel.schemas import ResponsesRequest

ROLES = frozenset({"user", "assistant", "system", "developer"})
PARTS = frozenset({"input_text", "input_image", "input_file", "output_text", "refusal"})
_ID_PREFIX = {"message": "msg_", "function_call": "fc_", "function_call_output": "fco_"}


def _need(ok: bool, message: str, param: str) -> None:
    if not ok:
        raise InvalidRequest(message, param=param, code="invalid_value")


def check_request(raw: dict[str, Any], typed: ResponsesRequest) -> None:
    _need(typed.input is not None, "Missing required parameter: 'input'.", "input")
    _need(typed.background is not True or typed.store is not False,
          "Background mode needs 'store': a background response is kept to be retrieved.", "background")
    _need(typed.previous_response_id is None or typed.conversation is None,
          "'previous_response_id' cannot be used together with 'conversation'.", "previous_response_id")
    if isinstance(typed.input, list):
        for i, item in enumerate(typed.input):
            check_item(item, f"input[{i}]")
    for i, tool in enumerate(typed.tools or ()):
        _check_tool(tool, f"tools[{i}]")
    if isinstance(typed.tool_choice, dict) and typed.tool_choice.get("type") == "function":
        _need(isinstance(typed.tool_choice.get("name"), str), "A function tool_choice needs a 'name'.",
              "tool_choice.name")
    _check_format((typed.text or {}).get("format"))


def check_item(item: dict[str, Any], param: str) -> None:
    kind = item.get("type", "message")
    if kind == "message":
        _need(item.get("role") in ROLES, "Messages need role 'user', 'assistant', 'system' or 'developer'.",
              f"{param}.role")
        content = item.get("content")
        _need(isinstance(content, str | list), "Message content must be a string or a list of parts.",
              f"{param}.content")
        for j, part in enumerate(content if isinstance(content, list) else ()):
            _check_part(part, f"{param}.content[{j}]")
    elif kind == "function_call":
        for key in ("call_id", "name", "arguments"):
            _need(isinstance(item.get(key), str), f"function_call items need a string '{key}'.", f"{param}.{key}")
    elif kind == "function_call_output":
        _need(isinstance(item.get("call_id"), str), "function_call_output items need a 'call_id'.",
              f"{param}.call_id")
        _need(isinstance(item.get("output"), str | list), "function_call_output needs an 'output'.",
              f"{param}.output")
    elif kind == "item_reference":
        _need(isinstance(item.get("id"), str) and bool(item["id"]), "An item_reference needs the 'id' of an item.",
              f"{param}.id")
    else:
        _need(isinstance(kind, str), "Input items need a string 'type'.", f"{param}.type")


def _check_part(part: Any, param: str) -> None:
    _need(isinstance(part, dict) and part.get("type") in PARTS,
          f"Content parts must be one of: {', '.join(sorted(PARTS))}.", f"{param}.type")
    kind = part["type"]
    if kind in ("input_text", "output_text"):
        _need(isinstance(part.get("text"), str), "Text parts need a string 'text'.", f"{param}.text")
    elif kind == "input_image":
        _need(isinstance(part.get("image_url"), str) or isinstance(part.get("file_id"), str),
              "input_image needs an 'image_url' or a 'file_id'.", param)
    elif kind == "input_file":
        _need(any(isinstance(part.get(k), str) for k in ("file_id", "file_data", "file_url")),
              "input_file needs a 'file_id', 'file_data' or 'file_url'.", param)


def _check_tool(tool: dict[str, Any], param: str) -> None:
    kind = tool.get("type")
    _need(isinstance(kind, str), "Tools need a string 'type'.", f"{param}.type")
    if kind == "function":
        name = tool.get("name")
        _need(isinstance(name, str) and 0 < len(name) <= 64, "Function tools need a 'name' (1-64 characters).",
              f"{param}.name")
        _need(tool.get("parameters") is None or isinstance(tool["parameters"], dict),
              "Function 'parameters' must be a JSON Schema object.", f"{param}.parameters")
    elif kind == "file_search":
        ids = tool.get("vector_store_ids")
        _need(isinstance(ids, list) and all(isinstance(i, str) for i in ids),
              "file_search needs 'vector_store_ids', a list of ids.", f"{param}.vector_store_ids")


def _check_format(fmt: Any) -> None:
    if fmt is None:
        return
    _need(isinstance(fmt, dict) and fmt.get("type") in ("text", "json_object", "json_schema"),
          "text.format.type must be 'text', 'json_object' or 'json_schema'.", "text.format.type")
    if fmt["type"] == "json_schema":
        _need(isinstance(fmt.get("name"), str), "A json_schema format needs a 'name'.", "text.format.name")
        _need(isinstance(fmt.get("schema"), dict), "A json_schema format needs a 'schema' object.",
              "text.format.schema")


def own_items(value: Any) -> list[dict[str, Any]]:
    """The request's input as it is stored and listed: messages with typed parts, every item with an id."""
    return [_stored(item) for item in as_items(value) if isinstance(item, dict)]


def _stored(item: dict[str, Any]) -> dict[str, Any]:
    kind = item.get("type", "message")
    out = {"id": new_id(_ID_PREFIX.get(kind, "item_")), **item, "type": kind}
    if kind in _ID_PREFIX:
        out.setdefault("status", "completed")
    if kind == "message":
        out["content"] = _parts(item.get("content"), item.get("role") == "assistant")
    return out


def _parts(content: Any, assistant: bool) -> list[Any]:
    if isinstance(content, str):
        content = [{"type": "output_text" if assistant else "input_text", "text": content}]
    if not assistant:
        return list(content)
    return [{"annotations": [], "logprobs": [], **p} if p.get("type") == "output_text" else p for p in content]
