"""The JSON the gateway answers with, as typed definitions for ``/openapi.json``.

Request bodies are described by the Structs their endpoints validate with (``gateway/kernel/schemas.py``,
``gateway/http/admin_keys.NewKey``); replies by these. Replies relayed from a backend (chat, embeddings,
...) are described by the fields the gateway relies on, open to anything else the backend adds. The CI
fuzz run (``tests/integration/test_fuzz.py``) checks every answer against these definitions.
"""

from __future__ import annotations

from typing import Any, Literal

from msgspec import Struct


class ErrorDetail(Struct):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(Struct):
    """OpenAI's error envelope; every error the gateway answers has this shape."""

    error: ErrorDetail


class AnthropicErrorDetail(Struct):
    type: str
    message: str


class AnthropicError(Struct):
    """Anthropic's error envelope: every error on the Messages routes."""

    type: Literal["error"]
    error: AnthropicErrorDetail


class AnthropicMessage(Struct):
    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    content: list[dict[str, Any]]
    model: str
    stop_reason: str | None
    stop_sequence: str | None
    usage: dict[str, Any]


class TokenCount(Struct):
    input_tokens: int


class Model(Struct):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(Struct):
    object: Literal["list"]
    data: list[Model]


class ChatCompletion(Struct):
    id: str
    object: str
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: dict[str, Any] | None = None


class Completion(ChatCompletion):
    """A legacy completion: the same fields the gateway relies on."""


class EmbeddingList(Struct):
    object: Literal["list"]
    data: list[dict[str, Any]]
    model: str
    usage: dict[str, Any] | None = None


class ImagesResponse(Struct):
    created: int
    data: list[dict[str, Any]]


class Transcription(Struct):
    text: str


class FileObject(Struct):
    id: str
    object: Literal["file"]
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: str


class FileList(Struct):
    object: Literal["list"]
    data: list[FileObject]
    first_id: str | None
    last_id: str | None
    has_more: bool


class Deleted(Struct):
    id: str
    object: str
    deleted: bool


class BatchCounts(Struct):
    total: int
    completed: int
    failed: int


class BatchErrorItem(Struct):
    code: str
    message: str
    param: str | None = None
    line: int | None = None


class BatchErrors(Struct):
    object: Literal["list"]
    data: list[BatchErrorItem]


class Batch(Struct):
    """OpenAI's batch object; times and files appear once they exist."""

    id: str
    object: Literal["batch"]
    endpoint: str
    input_file_id: str
    completion_window: str
    status: Literal["validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling",
                    "cancelled"]
    created_at: int
    expires_at: int
    request_counts: BatchCounts
    metadata: dict[str, str] | None = None
    errors: BatchErrors | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    in_progress_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None


class BatchList(Struct):
    object: Literal["list"]
    data: list[Batch]
    first_id: str | None
    last_id: str | None
    has_more: bool


class FileCounts(Struct):
    in_progress: int
    completed: int
    failed: int
    cancelled: int
    total: int


class VectorStore(Struct):
    id: str
    object: Literal["vector_store"]
    created_at: int
    name: str
    usage_bytes: int
    file_counts: FileCounts
    status: Literal["in_progress", "completed", "expired"]
    last_active_at: int | None
    metadata: dict[str, str] | None
    expires_at: int | None


class VectorStoreList(Struct):
    object: Literal["list"]
    data: list[VectorStore]
    first_id: str | None
    last_id: str | None
    has_more: bool


class VectorStoreFile(Struct):
    id: str
    object: Literal["vector_store.file"]
    usage_bytes: int
    created_at: int
    vector_store_id: str
    status: Literal["in_progress", "completed", "failed", "cancelled"]
    last_error: dict[str, Any] | None
    chunking_strategy: dict[str, Any] | None
    attributes: dict[str, str | bool | int | float] | None


class VectorStoreFileList(Struct):
    object: Literal["list"]
    data: list[VectorStoreFile]
    first_id: str | None
    last_id: str | None
    has_more: bool


class SearchHit(Struct):
    file_id: str
    filename: str
    score: float
    attributes: dict[str, str | bool | int | float] | None
    content: list[dict[str, Any]]


class SearchPage(Struct):
    object: Literal["vector_store.search_results.page"]
    search_query: list[str]
    data: list[SearchHit]
    has_more: bool
    next_page: str | None


class KeyRecord(Struct):
    """A virtual key as the admin API shows it (never its hash)."""

    key_id: str
    tenant: str
    roles: list[str]
    models: list[str]
    status: Literal["active", "revoked", "expired"]


class NewKeyReply(Struct):
    key: str  # the secret, shown once
    key_id: str
    tenant: str
    status: str


class KeyList(Struct):
    object: Literal["list"]
    data: list[KeyRecord]


class Usage(Struct):
    keys: dict[str, dict[str, Any]]
    tenants: dict[str, dict[str, Any]]


class JoinToken(Struct):
    token: str
    expires_at: float
    labels: dict[str, str]
    node_id: str | None


class NodeList(Struct):
    object: Literal["list"]
    data: list[dict[str, Any]]
    control_plane_key: str


class Health(Struct):
    status: str


class Readiness(Struct):
    status: Literal["ready", "not_ready"]
    models: dict[str, dict[str, Any]]
    backends: dict[str, str]
    stores: dict[str, str] | None = None


class Document(Struct):
    """A JSON document (this description itself, node heartbeats)."""


class McpMessage(Struct):
    """One JSON-RPC 2.0 message of the Model Context Protocol (``POST /mcp``): a request (with ``id``), such
    as ``initialize``, ``tools/list`` or ``tools/call``, or a notification (without)."""

    jsonrpc: Literal["2.0"]
    method: str
    id: int | str | None = None
    params: dict[str, Any] | None = None


class JsonRpcErrorDetail(Struct):
    code: int
    message: str
    data: Any = None


class JsonRpcReply(Struct):
    """A JSON-RPC 2.0 response: ``result`` or ``error``."""

    jsonrpc: Literal["2.0"]
    id: int | str | None
    result: dict[str, Any] | None = None
    error: JsonRpcErrorDetail | None = None


class McpEvent(Struct):
    """One message on an MCP reply stream: a notification (``method``: progress) or, last, the response."""

    jsonrpc: Literal["2.0"]
    id: int | str | None = None
    method: str | None = None
    params: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: JsonRpcErrorDetail | None = None


class JsonRpcError(Struct):
    """A JSON-RPC 2.0 error: ``/mcp``'s envelope, for the MCP transport's refusals and the door's."""

    jsonrpc: Literal["2.0"]
    id: int | str | None
    error: JsonRpcErrorDetail


class ResponseObject(Struct):
    """A Response (stored, or as created): the fields every one has; the rest as OpenAI describes."""

    id: str
    object: Literal["response"]
    created_at: float
    status: str
    output: list[dict[str, Any]]


class ItemList(Struct):
    object: Literal["list"]
    data: list[dict[str, Any]]
    first_id: str | None
    last_id: str | None
    has_more: bool


class ConversationObject(Struct):
    id: str
    object: Literal["conversation"]
    created_at: int
    metadata: dict[str, str] | None


class Item(Struct):
    """A conversation item (message, function_call, function_call_output)."""

    id: str
    type: str


# Bodies and queries of the stored-state routes (their handlers check each field by hand, in
# gateway/http/items.py and paging.py; these say the same for the description).

class ConversationCreate(Struct):
    items: list[dict[str, Any]] | None = None
    metadata: dict[str, str] | None = None


class ConversationUpdate(Struct):
    metadata: dict[str, str]


class ItemsCreate(Struct):
    items: list[dict[str, Any]]
