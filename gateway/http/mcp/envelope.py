"""The door's errors on ``/mcp`` (401, 429, 413, ...) as JSON-RPC 2.0 errors, the envelope MCP clients read.

The HTTP status stays the gateway's; ``error.code`` is JSON-RPC's (``-32600`` invalid request for a
4xx, ``-32603`` internal error otherwise) and ``error.data`` carries the gateway's own ``status`` and
``code`` (``invalid_api_key``, ``rate_limit_exceeded``, ...).
"""

from __future__ import annotations

import orjson
from mcp_types import INTERNAL_ERROR, INVALID_REQUEST

from gateway.kernel.errors import GatewayError


def jsonrpc_body(err: GatewayError) -> bytes:
    code = INVALID_REQUEST if 400 <= err.status < 500 else INTERNAL_ERROR
    data = {"status": err.status, "type": err.error_type, "code": err.code}
    return orjson.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": err.message, "data": data}})
