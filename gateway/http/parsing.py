"""Parse a request body once into (raw JSON object, typed view), with OpenAI-style errors."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
import orjson

from gateway.kernel.errors import InvalidRequest
from gateway.kernel.schemas import param_of

S = TypeVar("S")


def parse_object(body: bytes) -> dict[str, Any]:
    if not body:
        raise InvalidRequest("The request body is empty; expected a JSON object.", code="invalid_json")
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "We could not parse the JSON body of your request. Send a valid JSON object with "
            "'Content-Type: application/json'.",
            code="invalid_json",
        ) from None
    if not isinstance(raw, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    return raw


def validate(raw: dict[str, Any], schema: type[S], *, strict: bool = True) -> S:
    try:
        return msgspec.convert(raw, schema, strict=strict)
    except msgspec.ValidationError as exc:
        message, param = param_of(exc)
        if message.startswith("Object missing required field"):
            field = message.split("`")[1] if "`" in message else None
            param = f"{param}.{field}" if param and field else field
            message = f"Missing required parameter: '{param}'."
        else:
            message = f"Invalid value for '{param}': {message}." if param else f"{message}."
        raise InvalidRequest(message, param=param, code="invalid_value") from None
