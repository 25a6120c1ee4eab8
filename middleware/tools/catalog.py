"""The tool registry: built-ins enabled in config plus user-defined tools, with how each one runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from executors.spec import Runtime
from executors.tools import BUILTIN_TOOLS, ToolDef, tool_from_config
from gateway.kernel.config.sections.mcp import McpServer
from gateway.kernel.config.sections.tools import CustomTool, ToolOptions, ToolsSettings
from gateway.kernel.mcp import UpstreamTool

MCP_RUNTIME = "mcp"  # an upstream MCP server's tool: called on that server, never sent to a node as a job

# Re-running these on another node after a failure is safe (sandboxed, no network, no state kept).
_IDEMPOTENT_BUILTINS = frozenset({"python", "shell"})


@dataclass(frozen=True, slots=True)
class ToolEntry:
    spec: ToolDef
    options: ToolOptions
    idempotent: bool
    upstream: UpstreamTool | None = None  # set for an upstream MCP server's tool
    server: McpServer | None = None  # and its server

    @property
    def name(self) -> str:
        return self.spec.name


def mcp_entry(server: McpServer, tool: UpstreamTool) -> ToolEntry:
    """An upstream tool as the model sees it: ``server__tool``, its description and input schema."""
    spec = ToolDef(tool.offered_name, tool.description, tool.input_schema, cast(Runtime, MCP_RUNTIME),
                   egress=server.egress)  # the hosts a stdio server asks to reach (granted by the policy)
    return ToolEntry(spec, server.options, False, tool, server)


class ToolCatalog:
    def __init__(self, entries: Mapping[str, ToolEntry]) -> None:
        self._entries = dict(entries)

    @classmethod
    def from_settings(cls, settings: ToolsSettings) -> ToolCatalog:
        entries: dict[str, ToolEntry] = {}
        for name in settings.builtin:
            options = settings.options.get(name, ToolOptions())
            idempotent = options.idempotent if options.idempotent is not None else name in _IDEMPOTENT_BUILTINS
            entries[name] = ToolEntry(BUILTIN_TOOLS[name], options, idempotent)
        for custom in settings.custom:
            entries[custom.name] = ToolEntry(_custom_def(custom), custom, bool(custom.idempotent))
        return cls(entries)

    def get(self, name: str) -> ToolEntry | None:
        return self._entries.get(name)

    def with_entries(self, more: Mapping[str, ToolEntry]) -> ToolCatalog:
        """This catalog plus ``more`` (one request's upstream MCP tools)."""
        return ToolCatalog({**self._entries, **more}) if more else self

    def names(self) -> list[str]:
        return sorted(self._entries)


def _custom_def(tool: CustomTool) -> ToolDef:
    return tool_from_config(
        {
            "name": tool.name, "description": tool.description, "parameters": tool.parameters,
            "image": tool.image, "module": tool.module, "command": list(tool.command),
            "secrets": list(tool.secrets), "egress": list(tool.egress),
        }
    )
