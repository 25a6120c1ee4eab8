"""``llmops schema``: the JSON schema of the configuration file (kept in config/schema.json)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from executors.drivers import DRIVERS
from gateway.kernel.config import Settings
from middleware.stages import STAGES
from routers.backends import BACKEND_TYPES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", help="write to this file instead of stdout")


def schema_text() -> str:
    schema: dict[str, Any] = Settings.model_json_schema()
    _names_from_registries(schema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "llmops-gateway configuration"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def run(args: argparse.Namespace) -> int:
    text = schema_text()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        print(text, end="")
    return 0


def _names_from_registries(schema: dict[str, Any]) -> None:
    """Stage, backend type and driver names come from the tables beside their code, not the model."""
    defs = schema["$defs"]
    schema["properties"]["chain"]["items"]["enum"] = [entry.name for entry in STAGES]
    defs["BackendSettings"]["properties"]["type"]["enum"] = list(BACKEND_TYPES)
    driver = {"anyOf": [{"enum": list(DRIVERS), "type": "string"}, {"type": "null"}]}
    for section in ("ToolOptions", "CustomTool"):
        defs[section]["properties"]["driver"].update(driver)
    defs["StaticNode"]["properties"]["drivers"]["items"]["enum"] = list(DRIVERS)
