"""The rag stage on ``POST /v1/responses`` (OpenAI's ``file_search`` over the gateway's vector stores).

The query is the last user message; the retrieved context goes in as a system message item before it;
what was found is left in ``FILE_SEARCH`` for the backend adapter (or the tools stage), which shows it as a
``file_search_call`` output item and ``file_citation`` annotations
(``gateway/services/responses_wire/responses_citations.py``).
"""

from __future__ import annotations

from typing import Any

from gateway.kernel.responses import FileSearch, as_items, last_user_text
from gateway.services.vectorstores.objects import Hit
from middleware.rag.inject import insert_before_last_user

INCLUDE_RESULTS = "file_search_call.results"


def query_of(body: dict[str, Any]) -> str | None:
    return last_user_text(as_items(body.get("input")))


def inject(body: dict[str, Any], message: dict[str, str]) -> None:
    body["input"] = insert_before_last_user(as_items(body.get("input")), {"type": "message", **message})


def asks_file_search(body: dict[str, Any]) -> bool:
    return any(isinstance(t, dict) and t.get("type") == "file_search" for t in body.get("tools") or ())


def found(body: dict[str, Any], query: str | None, hits: list[Hit]) -> FileSearch:
    results = tuple({"file_id": h.file_id, "filename": h.filename, "text": h.text, "score": round(h.score, 4),
                     "attributes": h.attributes} for h in hits)
    return FileSearch((query,) if query else (), results, INCLUDE_RESULTS in (body.get("include") or ()))
