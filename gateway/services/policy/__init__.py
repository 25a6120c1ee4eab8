"""The policy engine: every request, tool call and retrieval is decided by policy."""
