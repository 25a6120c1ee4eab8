"""The scanner leaves the reference MCP servers' real tools alone: every tool that
``@modelcontextprotocol/server-everything`` and ``server-filesystem`` list (run with node, listed with the
``mcp`` SDK over stdio) scans clean, description and schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from gateway.services.mcp.scan import scan_tool
from tests.support.npm import npm_package

pytestmark = pytest.mark.integration

EVERYTHING = "@modelcontextprotocol/server-everything@2026.8.31"
FILESYSTEM = "@modelcontextprotocol/server-filesystem@2026.8.31"


async def listed(argv: list[str]) -> list[tuple[str, str, dict[str, object]]]:
    async with stdio_client(StdioServerParameters(command="node", args=argv)) as (read, write), \
            ClientSession(read, write) as session:
        await session.initialize()
        tools = (await session.list_tools()).tools
    return [(t.name, t.description or "", dict(t.input_schema)) for t in tools]


async def test_the_reference_servers_tools_scan_clean(tmp_path_factory: pytest.TempPathFactory,
                                                      tmp_path: Path) -> None:
    modules = npm_package(tmp_path_factory, EVERYTHING, FILESYSTEM) / "node_modules" / "@modelcontextprotocol"
    tools = [*await listed([str(modules / "server-everything" / "dist" / "index.js"), "stdio"]),
             *await listed([str(modules / "server-filesystem" / "dist" / "index.js"), str(tmp_path)])]
    names = {name for name, _, _ in tools}
    assert {"echo", "get-env", "read_text_file", "write_file", "create_directory"} <= names
    flagged = {name: scan_tool(description, schema) for name, description, schema in tools}
    assert {name: found for name, found in flagged.items() if found} == {}
