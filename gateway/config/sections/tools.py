"""Settings for issue 6: tools, nodes, the agent loop."""

from __future__ import annotations

from gateway.config.base import Section


class ToolsSettings(Section):
    pass
