"""``llmops schema``: the JSON schema of the configuration file (kept in config/schema.json)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from gateway.kernel.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", help="write to this file instead of stdout")


def schema_text() -> str:
    schema: dict[str, Any] = Settings.model_json_schema()
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
