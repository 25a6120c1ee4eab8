"""The MCP bridge (``executors/mcp_bridge.py``) run as the node runs it, with real stdio servers as children:
the official Python SDK's server, and a stdlib server that logs, notifies, pings, pages and misbehaves."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from executors import mcp_bridge
from executors.drivers.base import SECRETS_DIR
from executors.spec import MCP_TOKEN_SECRET

BRIDGE = Path(mcp_bridge.__file__)
TINY = Path(__file__).with_name("mcp_tiny_server.py")
SDK_SERVER = """
from mcp.server import MCPServer

app = MCPServer("sdk-tiny")


@app.tool()
def add(a: int, b: int) -> int:
    \"\"\"Add two integers.\"\"\"
    return a + b


app.run()
"""


def bridge(server: list[str], op: dict[str, Any], timeout: float = 60) -> tuple[dict[str, Any], int]:
    """Run the bridge with ``server`` as its child; its one JSON answer and its exit code."""
    run = subprocess.run([sys.executable, "-I", "-S", str(BRIDGE), "--", *server], input=json.dumps(op),
                         capture_output=True, text=True, timeout=timeout)
    lines = run.stdout.splitlines()
    assert len(lines) == 1, run.stdout + run.stderr
    answer: dict[str, Any] = json.loads(lines[0])
    return answer, run.returncode


def tiny(mode: str = "ok") -> list[str]:
    return [sys.executable, "-I", str(TINY), mode]


@pytest.fixture(scope="module")
def sdk_server(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    path = tmp_path_factory.mktemp("sdk") / "server.py"
    path.write_text(SDK_SERVER)
    return [sys.executable, str(path)]


def test_lists_and_calls_the_python_sdk_server(sdk_server: list[str]) -> None:
    listed, code = bridge(sdk_server, {"op": "list_tools"})
    assert code == 0 and listed["ok"] is True
    assert [t["name"] for t in listed["result"]["tools"]] == ["add"]
    assert listed["result"]["tools"][0]["inputSchema"]["required"] == ["a", "b"]
    assert listed["server"]["name"] == "sdk-tiny" and listed["protocol"] == mcp_bridge.PROTOCOL
    called, code = bridge(sdk_server, {"op": "call_tool", "name": "add", "arguments": {"a": 2, "b": 40}})
    assert code == 0 and called["result"]["content"] == [{"type": "text", "text": "42"}]
    assert called["result"]["structuredContent"] == {"result": 42}


def test_logs_notifications_pings_and_pages_are_handled() -> None:
    listed, code = bridge(tiny(), {"op": "list_tools"})
    assert code == 0, listed
    assert [t["name"] for t in listed["result"]["tools"]] == [
        "echo", "env_sha256", "connect", "egress_get", "listdir", "read", "fail"]
    called, _ = bridge(tiny(), {"op": "call_tool", "name": "echo", "arguments": {"b": [1], "a": "é"}})
    assert json.loads(called["result"]["content"][0]["text"]) == {"a": "é", "b": [1]}


def test_a_json_rpc_error_is_reported_with_its_code() -> None:
    answer, code = bridge(tiny(), {"op": "call_tool", "name": "fail", "arguments": {}})
    assert code == 1 and answer["ok"] is False
    assert answer["error"] == "rpc" and answer["code"] == -32602 and "unknown tool 'fail'" in answer["message"]


def test_garbage_on_stdout_is_a_clear_error_within_the_byte_budget() -> None:
    answer, code = bridge(tiny("garbage"), {"op": "list_tools", "max_bytes": 4096})
    assert code == 1 and answer["error"] == "garbage"
    assert "over 4096 bytes that are not JSON-RPC" in answer["message"] and "this is not JSON" in answer["message"]


def test_json_that_is_not_json_rpc_is_garbage() -> None:
    answer, _ = bridge(tiny("notrpc"), {"op": "list_tools"})
    assert answer["error"] == "garbage" and "[1, 2, 3]" in answer["message"] and "initialize" in answer["message"]


def test_a_crashing_server_is_reported_with_its_exit_code_and_stderr() -> None:
    answer, code = bridge(tiny("crash"), {"op": "list_tools"})
    assert code == 1 and answer["error"] == "exited"
    assert "exited with code 3 before answering initialize" in answer["message"]
    assert "boom: the server fell over" in answer["message"]


def test_a_silent_server_times_out_and_is_killed() -> None:
    answer, code = bridge(tiny("silent"), {"op": "list_tools", "timeout_s": 0.5}, timeout=30)
    assert code == 1 and answer["error"] == "timeout" and "no answer to initialize" in answer["message"]


def test_a_message_over_the_byte_budget_is_refused() -> None:
    answer, _ = bridge(tiny("huge"), {"op": "list_tools", "max_bytes": 10_000})
    assert answer["error"] == "too_large" and "over 10000 bytes" in answer["message"]


def test_a_command_that_cannot_start_is_a_spawn_error() -> None:
    answer, code = bridge(["/nonexistent/server"], {"op": "list_tools"})
    assert code == 1 and answer["error"] == "spawn" and "/nonexistent/server" in answer["message"]


@pytest.mark.parametrize(("op", "why"), [
    ({"op": "delete_everything"}, "op must be"),
    ({"op": "call_tool", "arguments": {}}, "needs a name"),
    ({"op": "list_tools", "timeout_s": "soon"}, "timeout_s must be a positive number"),
    ({"op": "list_tools", "max_bytes": -1}, "max_bytes must be a positive number"),
])
def test_bad_input_is_refused_before_anything_starts(op: dict[str, Any], why: str) -> None:
    answer, code = bridge(tiny(), op)
    assert code == 1 and answer["error"] == "input" and why in answer["message"]


def test_no_server_command_is_refused() -> None:
    answer, _ = bridge([], {"op": "list_tools"})
    assert answer["error"] == "input" and "no server command" in answer["message"]


def test_the_bridge_imports_only_the_standard_library() -> None:
    nodes = list(ast.walk(ast.parse(BRIDGE.read_text())))
    names = {alias.name.split(".")[0] for node in nodes if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module.split(".")[0] for node in nodes if isinstance(node, ast.ImportFrom) and node.module}
    assert names and names <= set(sys.stdlib_module_names) | {"__future__"}, names


def test_the_token_file_is_where_the_node_mounts_the_granted_secret() -> None:
    assert mcp_bridge.TOKEN_FILE == f"{SECRETS_DIR}/{MCP_TOKEN_SECRET}"
