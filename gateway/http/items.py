"""Input items of the Conversations API, checked and stored as items with ids (OpenAI's item shapes).

=========================  ==========================================================================
item ``type``               stored as
=========================  ==========================================================================
``message`` (or no type)    ``{"type": "message", "id", "status": "completed", "role", "content": [...]}``;
                            string content becomes one ``input_text`` part (``output_text`` for the
                            ``assistant``); parts: input_text, output_text, refusal, input_image, input_file
``function_call``           ``{"type", "id", "status", "call_id", "name", "arguments"}``
``function_call_output``    ``{"type", "id", "status", "call_id", "output"}`` (a string or content parts)
=========================  ==========================================================================

Only the fields above are kept; an id the client gives is kept when it can name an item. Every string
passes ``validate.clean_text`` (no NUL), so nothing stored can fail to read back.
"""

from __future__ import annotations

from typing import Any

from gateway.http import validate as v
from gateway.kernel.errors import InvalidRequest
from gateway.services.responses.records import new_item_id

MAX_ITEMS = 20
MAX_TEXT = 10 * 1024 * 1024
MAX_PARTS = 256
ROLES = ("user", "assistant", "system", "developer")
DETAILS = ("low", "high", "auto")
_KINDS = "message, function_call, function_call_output"


def input_items(raw: Any, param: str = "items", *, required: bool = False) -> list[dict[str, Any]]:
    if raw is None and not required:
        return []
    if not isinstance(raw, list) or (required and not raw):
        raise InvalidRequest(f"'{param}' must be a non-empty array of items." if required else
                             f"'{param}' must be an array of items.", param=param)
    if len(raw) > MAX_ITEMS:
        raise InvalidRequest(f"'{param}' has more than {MAX_ITEMS} items; add at most {MAX_ITEMS} at a time.",
                             param=param)
    return [input_item(item, f"{param}[{i}]") for i, item in enumerate(raw)]


def input_item(raw: Any, param: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidRequest(f"'{param}' must be an object.", param=param)
    kind = raw.get("type", "message")
    if kind == "message":
        item = _message(raw, param)
    elif kind == "function_call":
        item = {"type": kind, "call_id": _text(raw, "call_id", param, 64), "name": _text(raw, "name", param, 128),
                "arguments": _text(raw, "arguments", param, MAX_TEXT)}
    elif kind == "function_call_output":
        item = {"type": kind, "call_id": _text(raw, "call_id", param, 64), "output": _output(raw, param)}
    else:
        raise InvalidRequest(f"'{param}.type' must be one of {_KINDS}.", param=f"{param}.type")
    return {"id": _id(raw, kind, param), **item, "status": "completed"}


def _id(raw: dict[str, Any], kind: str, param: str) -> str:
    given = raw.get("id")
    if given is None:
        return new_item_id(kind)
    if not isinstance(given, str) or not v.ID.fullmatch(given):
        raise InvalidRequest(f"'{param}.id' must be an id of letters, digits, '_' or '-'.", param=f"{param}.id")
    return given


def _message(raw: dict[str, Any], param: str) -> dict[str, Any]:
    role = raw.get("role")
    if role not in ROLES:
        raise InvalidRequest(f"'{param}.role' must be one of {', '.join(ROLES)}.", param=f"{param}.role")
    content = raw.get("content")
    if isinstance(content, str):
        text = v.clean_text(content, f"{param}.content", max_len=MAX_TEXT)
        part = ({"type": "output_text", "text": text, "annotations": [], "logprobs": []} if role == "assistant"
                else {"type": "input_text", "text": text})
        return {"type": "message", "role": role, "content": [part]}
    return {"type": "message", "role": role, "content": _parts(content, f"{param}.content", output=role == "assistant")}


def _parts(raw: Any, param: str, *, output: bool) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw or len(raw) > MAX_PARTS:
        raise InvalidRequest(f"'{param}' must be a string or an array of 1 to {MAX_PARTS} content parts.",
                             param=param)
    return [_part(part, f"{param}[{i}]", output) for i, part in enumerate(raw)]


def _part(raw: Any, param: str, output: bool) -> dict[str, Any]:
    kind = raw.get("type") if isinstance(raw, dict) else None
    if not isinstance(raw, dict) or kind is None:
        raise InvalidRequest(f"'{param}' must be a content part object with a 'type'.", param=param)
    if kind == "input_text":
        return {"type": kind, "text": _text(raw, "text", param, MAX_TEXT)}
    if kind == "output_text" and output:
        return {"type": kind, "text": _text(raw, "text", param, MAX_TEXT), "annotations": [], "logprobs": []}
    if kind == "refusal" and output:
        return {"type": kind, "refusal": _text(raw, "refusal", param, MAX_TEXT)}
    if kind == "input_image" and not output:
        detail = raw.get("detail", "auto")
        if detail not in DETAILS:
            raise InvalidRequest(f"'{param}.detail' must be one of low, high, auto.", param=f"{param}.detail")
        return {"type": kind, "detail": detail, **_optional(raw, param, ("image_url", "file_id"))}
    if kind == "input_file" and not output:
        return {"type": kind, **_optional(raw, param, ("file_id", "filename", "file_data", "file_url"))}
    allowed = "output_text, refusal" if output else "input_text, input_image, input_file"
    raise InvalidRequest(f"'{param}.type' must be one of {allowed}.", param=f"{param}.type")


def _output(raw: dict[str, Any], param: str) -> Any:
    output = raw.get("output")
    if isinstance(output, str):
        return v.clean_text(output, f"{param}.output", max_len=MAX_TEXT)
    return _parts(output, f"{param}.output", output=False)


def _text(raw: dict[str, Any], key: str, param: str, max_len: int) -> str:
    value = raw.get(key)
    if value is None:
        raise InvalidRequest(f"Missing required parameter: '{param}.{key}'.", param=f"{param}.{key}")
    return v.clean_text(value, f"{param}.{key}", max_len=max_len)


def _optional(raw: dict[str, Any], param: str, keys: tuple[str, ...]) -> dict[str, str]:
    found = {key: v.clean_text(raw[key], f"{param}.{key}", max_len=MAX_TEXT) for key in keys
             if raw.get(key) is not None}
    if not found:
        raise InvalidRequest(f"'{param}' needs one of {', '.join(keys)}.", param=param)
    return found
