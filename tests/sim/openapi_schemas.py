"""Validate bodies against OpenAI's published OpenAPI schemas (``components/schemas/<Name>``).

The spec is OpenAPI 3.1 (JSON Schema 2020-12) but still uses the 3.0 ``nullable: true`` keyword in
places; ``_nullable_to_type`` rewrites those so ``null`` validates. Shareable: nothing here is sim-specific.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path("/work/shared/openai-openapi/openapi.yaml")
_URI = "urn:openai-openapi"


def _nullable_to_type(node: Any) -> Any:
    if isinstance(node, list):
        return [_nullable_to_type(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _nullable_to_type(value) for key, value in node.items()}
    if out.pop("nullable", False) is True:
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        if isinstance(out.get("enum"), list):
            out["enum"] = [*out["enum"], None]
    return out


@cache
def _registry() -> Registry:  # type: ignore[type-arg]
    spec = yaml.load(SPEC_PATH.read_text(), Loader=yaml.CSafeLoader)
    resource = Resource.from_contents(_nullable_to_type(spec), default_specification=DRAFT202012)
    return Registry().with_resource(_URI, resource)


def validator(name: str) -> Draft202012Validator:
    """A validator for ``#/components/schemas/<name>`` with every ``$ref`` resolvable."""
    return Draft202012Validator({"$ref": f"{_URI}#/components/schemas/{name}"}, registry=_registry())


def validate(name: str, body: Any) -> None:
    """Raise ``jsonschema.ValidationError`` (best match) if ``body`` does not fit the schema."""
    validator(name).validate(body)
