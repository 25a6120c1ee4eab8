"""``/openapi.json`` and ``llmops openapi``: every route of the table described, with the Structs its
endpoint validates with and the errors its door can answer."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import httpx
import jsonschema
import msgspec
import pytest

from gateway.app import description, routes
from gateway.http.admin_keys import NewKey
from gateway.http.front_door import DoorRoute
from gateway.kernel.config import settings_from_mapping
from gateway.kernel.observability.logging import JsonLog
from gateway.kernel.observability.metrics import Metrics
from gateway.kernel.schemas import ChatCompletionRequest, VectorStoreSearch
from gateway.wiring import Gateway
from tests.conftest import GatewayFactory
from tests.support.processes import ROOT, ServerProcess

CONFIG: dict[str, Any] = {
    "backends": [{"name": "sim", "type": "openai", "base_url": "http://127.0.0.1:9/v1"}],
    "models": [{"name": "sim-chat", "deployments": [{"backend": "sim"}]}],
    "chain": ["authn", "limits"],
    "auth": {"static_keys": [{"key": "sk-openapi-test-000", "key_id": "k", "tenant": "t"}]},
}


def built(config: dict[str, Any]) -> tuple[dict[str, Any], list[DoorRoute]]:
    async def go() -> tuple[dict[str, Any], list[DoorRoute]]:
        gateway = Gateway(settings_from_mapping(config), JsonLog(level="error"), Metrics())
        await gateway.start()
        try:
            table = routes(gateway)
            return description(gateway, table), table
        finally:
            await gateway.aclose()

    return asyncio.run(go())


def test_every_route_of_the_table_is_an_operation() -> None:
    doc, table = built(CONFIG)
    described = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    served = {(r.path.replace(":path}", "}"), r.method.lower()) for r in table}
    assert served == described
    assert ("/admin/usage", "get") in described, "limits in the chain serves usage"


def test_bodies_are_the_structs_the_endpoints_validate_with() -> None:
    doc, _ = built(CONFIG)
    schemas = doc["components"]["schemas"]
    for path, struct in (("/v1/chat/completions", ChatCompletionRequest), ("/admin/keys", NewKey),
                         ("/v1/vector_stores/{store_id}/search", VectorStoreSearch)):
        body = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{struct.__name__}"}
        _, expected = msgspec.json.schema_components([struct], ref_template="#/components/schemas/{name}")
        assert schemas[struct.__name__] == expected[struct.__name__]


def test_errors_follow_the_door() -> None:
    doc, _ = built(CONFIG)
    chat = doc["paths"]["/v1/chat/completions"]["post"]
    assert {"400", "401", "403", "404", "429", "502", "503", "504"} <= set(chat["responses"])
    assert chat["security"] == [{"bearer": []}]
    assert "text/event-stream" in chat["responses"]["200"]["content"]
    admin = doc["paths"]["/admin/keys"]["post"]["responses"]
    assert {"201", "400", "401", "403", "409", "429"} <= set(admin)
    health = doc["paths"]["/healthz"]["get"]
    assert set(health["responses"]) == {"200"} and "security" not in health
    upload = doc["paths"]["/v1/files"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert upload["properties"]["file"] == {"type": "string", "format": "binary"}


def test_without_authn_key_routes_are_open() -> None:
    doc, _ = built({**CONFIG, "chain": []})
    chat = doc["paths"]["/v1/chat/completions"]["post"]
    assert "security" not in chat and "401" not in chat["responses"]
    assert "/admin/usage" not in doc["paths"]


def test_every_schema_is_valid_json_schema() -> None:
    doc, _ = built(CONFIG)
    for schema in doc["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)  # raises, naming the bad keyword


def test_the_command_prints_what_the_gateway_serves(start_gateway: GatewayFactory, sim: ServerProcess,
                                                   tmp_path: Any) -> None:
    config = {**CONFIG, "backends": [{"name": "sim", "type": "openai", "base_url": f"{sim.url}/v1"}]}
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(config))
    printed = subprocess.run([sys.executable, "-m", "gateway.cli", "openapi", "--config", str(path)], cwd=ROOT,
                             capture_output=True, text=True, timeout=60, check=True).stdout
    served = httpx.get(f"{start_gateway(config).url}/openapi.json", timeout=10).json()
    assert json.loads(printed) == served
    assert served["openapi"] == "3.1.0"


@pytest.mark.parametrize("argv", [["--config", "/nonexistent/gateway.yaml"]])
def test_the_command_reports_a_bad_config_in_one_line(argv: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "gateway.cli", "openapi", *argv], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr


def test_messages_routes_describe_anthropics_error_envelope() -> None:
    doc, _ = built(CONFIG)
    create = doc["paths"]["/v1/messages"]["post"]["responses"]
    assert create["401"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/AnthropicError"}
    assert create["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AnthropicMessage"}


def test_mcp_is_described_as_json_rpc_in_and_an_event_stream_out() -> None:
    doc, _ = built(CONFIG)
    mcp = doc["paths"]["/mcp"]["post"]
    assert mcp["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/McpMessage"}
    ok = mcp["responses"]["200"]["content"]
    event = ok["text/event-stream"]["schema"]
    assert event["required"] == ["data"]
    assert event["properties"]["data"]["contentSchema"] == {"$ref": "#/components/schemas/McpEvent"}
    assert ok["application/json"]["schema"] == {"$ref": "#/components/schemas/JsonRpcReply"}
    assert "content" not in mcp["responses"]["202"]  # a notification is accepted with no body
    for status in ("400", "401", "406", "413", "415", "429"):
        schema = mcp["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/JsonRpcError"}, status
