"""Validate response bodies against OpenAI's published OpenAPI description, carried in this repository
(``tests/support/openai-openapi/``: the description as OpenAI publishes it, its MIT licence and version)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parent / "openai-openapi" / "openapi.yaml"
_SPEC_URI = "urn:openai-openapi"


@functools.cache
def _spec() -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SPEC_PATH.open("rb") as fh:
        spec: dict[str, Any] = yaml.load(fh, Loader=loader)
    spec = _nullable_to_31(spec)
    _patch_known_gaps(spec["components"]["schemas"])
    return spec


def _patch_known_gaps(schemas: dict[str, Any]) -> None:
    """Where the published description disagrees with what OpenAI's API sends, follow the API.

    Stream chunks carry ``"finish_reason": null`` until the last one (the description's own
    prose says so), but the schema lists it as a required non-null string.
    """
    choice = schemas["CreateChatCompletionStreamResponse"]["properties"]["choices"]["items"]
    reason = choice["properties"]["finish_reason"]
    reason["type"] = ["string", "null"]
    reason["enum"] = [*reason.get("enum", []), None]


def _nullable_to_31(node: Any) -> Any:
    """The spec still carries OpenAPI 3.0's ``nullable``; express it in JSON Schema terms."""
    if isinstance(node, dict):
        out = {k: _nullable_to_31(v) for k, v in node.items()}
        if out.pop("nullable", False) is True:
            kind = out.get("type")
            if isinstance(kind, str):
                out["type"] = [kind, "null"]
            elif "type" not in out:
                return {"anyOf": [out, {"type": "null"}]}
        return out
    if isinstance(node, list):
        return [_nullable_to_31(v) for v in node]
    return node


@functools.cache
def _registry() -> Registry:
    resource = Resource.from_contents(_spec(), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(_SPEC_URI, resource)
    return registry


def validate(instance: Any, schema_name: str) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``instance`` matches components/schemas/NAME."""
    if schema_name not in _spec()["components"]["schemas"]:
        raise KeyError(f"no schema {schema_name!r} in the OpenAPI description")
    schema = {"$ref": f"{_SPEC_URI}#/components/schemas/{schema_name}"}
    jsonschema.Draft202012Validator(schema, registry=_registry()).validate(instance)


def spec_available() -> bool:
    return SPEC_PATH.exists()
