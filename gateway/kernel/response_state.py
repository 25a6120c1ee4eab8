"""The contract between the Responses endpoints and the store that keeps their server-side state.

``POST /v1/responses`` (``gateway/http/responses_api``) builds the OpenAI Response object and its input
items; a ``ResponseStore`` (``gateway/services/responses``, PostgreSQL) keeps them per tenant, so any
replica answers any id. Another tenant's id is simply absent (the endpoints turn that into a 404).

Items are OpenAI's Responses items as JSON objects (``{"type": "message", "role": ..., "content": [...]}``,
``function_call``, ``function_call_output``, ...), each with its ``id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

Order = Literal["asc", "desc"]


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: str
    tenant: str
    response: dict[str, Any]  # the Response object as last written (status, output, usage, ...)
    input_items: list[dict[str, Any]]  # this response's own input, as items with ids
    previous_response_id: str | None
    conversation_id: str | None
    created_at: int  # unix seconds


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    has_more: bool


class ResponseStore(Protocol):
    async def put(self, tenant: str, response: dict[str, Any], input_items: list[dict[str, Any]], *,
                  previous_response_id: str | None = None, conversation_id: str | None = None) -> None:
        """Insert a response (its ``id`` is ``response["id"]``), or replace its object if it exists."""

    async def update(self, tenant: str, response: dict[str, Any]) -> bool:
        """Replace the stored object of an existing response (status changes, output); False if absent."""

    async def get(self, tenant: str, response_id: str) -> StoredResponse | None: ...

    async def context_items(self, tenant: str, response_id: str) -> list[dict[str, Any]] | None:
        """The conversation so far for ``previous_response_id``: each ancestor's input items then its
        output items, oldest first, ending with ``response_id``'s own; None when the id is unknown."""

    async def input_items(self, tenant: str, response_id: str, *, after: str | None, limit: int,
                          order: Order) -> Page | None: ...

    async def find_item(self, tenant: str, item_id: str) -> dict[str, Any] | None:
        """An item of this tenant by id, wherever it is kept: a response's input or output, a conversation."""
        ...

    async def delete(self, tenant: str, response_id: str) -> bool: ...


class ConversationStore(Protocol):
    """What ``POST /v1/responses`` with ``conversation`` needs; the Conversations API has the rest."""

    async def all_items(self, tenant: str, conversation_id: str) -> list[dict[str, Any]] | None:
        """Every item of the conversation, oldest first; None when the id is unknown."""

    async def append(self, tenant: str, conversation_id: str, items: list[dict[str, Any]]) -> bool:
        """Add items (with ids) at the end; False when the conversation is unknown."""
