"""Stores for upstream MCP servers: per-subject credentials and approved (pinned) tool definitions."""
