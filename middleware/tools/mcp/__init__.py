"""Upstream MCP servers as tools: discovery, offering to models, and calls decided by the policy."""
