"""``POST /mcp``: the gateway's tools as one MCP server (streamable HTTP, stateless), on the official ``mcp`` SDK.

``endpoint.py`` hands an authenticated request to the SDK's transport; ``tools.py`` answers ``tools/list``
and ``tools/call`` over ``middleware.tools.direct``; ``envelope.py`` renders the door's errors as JSON-RPC.
"""
